//! Chat frames as a client (or a server, for the CLI) sends them: 4-byte length prefix + JSON.
//! The input is split in two at its first byte's value: the bytes a client sent, read frame
//! by frame the way a connection reads them until a frame error closes it. A frame that
//! decodes must re-encode to a frame that decodes.

#![no_main]

use bytes::BytesMut;
use cuecast::chat::proto;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (client, server) = rest.split_at(usize::from(split).min(rest.len()));
    let mut buf = BytesMut::from(client);
    while let Ok(Some(_msg)) = proto::read_client_frame(&mut buf, MAX) {}
    let mut buf = BytesMut::from(server);
    while let Ok(Some(msg)) = proto::read_server_frame(&mut buf, MAX) {
        let mut encoded = proto::encode(&msg).into();
        let decoded = proto::read_server_frame(&mut encoded, usize::MAX)
            .expect("an encoded server message decodes");
        assert!(
            decoded.is_some(),
            "an encoded server message is one whole frame"
        );
    }
    // Every frame error maps to a documented close code.
    let mut buf = BytesMut::from(rest);
    if let Err(error) = proto::read_client_frame(&mut buf, MAX) {
        let _ = error.close_code().code();
    }
});
