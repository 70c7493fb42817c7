//! The RTMP server session as a publisher drives it: a valid handshake, then the fuzz input as
//! the chunk stream, fed in slices whose sizes come from the input's first byte. Every
//! `connect` and `publish` is accepted (so media reaches the FLV unpacker, as in the server),
//! every event and reply is drained. A panic, or an error that does not end the session, is a
//! finding; `Err` from `handle_input` (the connection is closed) is the expected outcome for
//! garbage.

#![no_main]

use cuecast::ingest::flv::FlvUnpacker;
use cuecast::ingest::rtmp::handshake::{HANDSHAKE_SIZE, RANDOM_SIZE};
use cuecast::ingest::rtmp::session::{Event, ServerSession, SessionConfig};
use cuecast::media::frame::MediaUnit;
use libfuzzer_sys::fuzz_target;

mod media_unit;

fuzz_target!(|data: &[u8]| {
    let Some((&slicing, stream)) = data.split_first() else {
        return;
    };
    let mut session = ServerSession::new(SessionConfig::default(), [0x5a; RANDOM_SIZE]);
    // C0 + C1 + C2 (C2 is not checked by the server).
    let mut handshake = vec![3u8];
    handshake.extend(std::iter::repeat_n(0u8, 2 * HANDSHAKE_SIZE));
    if session.handle_input(&handshake).is_err() {
        panic!("a valid handshake was refused");
    }
    let mut unpacker = FlvUnpacker::new();
    let slice = 1 + usize::from(slicing) * 64;
    for piece in stream.chunks(slice) {
        let result = session.handle_input(piece);
        drain(&mut session, &mut unpacker);
        if result.is_err() {
            // Once failed, the session must stay failed and report it.
            assert!(session.handle_input(b"\x03").is_err());
            return;
        }
        if session.wants_close() {
            return;
        }
    }
});

fn drain(session: &mut ServerSession, unpacker: &mut FlvUnpacker) {
    while session.poll_transmit().is_some() {}
    while let Some(event) = session.poll_event() {
        match event {
            Event::Connect { .. } => session.accept_connect(),
            Event::Publish { stream_id, .. } => session.accept_publish(stream_id),
            Event::Video {
                timestamp, data, ..
            } => unpack(unpacker.video(timestamp, data)),
            Event::Audio {
                timestamp, data, ..
            } => unpack(unpacker.audio(timestamp, data)),
            Event::Metadata { .. } | Event::Unpublish { .. } => {}
        }
        while session.poll_transmit().is_some() {}
    }
}

fn unpack<E>(unit: Result<Option<MediaUnit>, E>) {
    if let Ok(Some(unit)) = unit {
        media_unit::check(&unit);
    }
}
