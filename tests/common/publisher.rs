//! Publisher processes: ffmpeg (RTMP, SRT) and GStreamer (rtmp2sink, srtsink) pushing test
//! media into a [`super::Server`].

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A publisher process (ffmpeg or gst-launch), killed on drop.
pub struct Publisher {
    pub child: Child,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Publisher {
    /// ffmpeg publishing as OBS does: H.264 high, 2 s keyframe interval, AAC 48 kHz stereo,
    /// real-time (`-re`), for `seconds`. An `rtmps://` URL publishes over TLS without verifying
    /// the server's certificate (`-tls_verify 0`, for the development certificate).
    pub fn ffmpeg(url: &str, seconds: u32) -> Publisher {
        Publisher::ffmpeg_args(url, seconds, "640x360")
    }

    pub fn ffmpeg_args(url: &str, seconds: u32, size: &str) -> Publisher {
        // x264 `veryfast` is OBS's default preset; it keeps the High profile (ultrafast drops to
        // Main/Baseline features).
        let args = format!(
            "-hide_banner -loglevel warning -nostdin -re \
             -f lavfi -i testsrc2=size={size}:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
             -t {seconds} -c:v libx264 -profile:v high -preset veryfast -pix_fmt yuv420p \
             -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -b:v 800k \
             -c:a aac -ar 48000 -ac 2 -b:a 128k -f flv"
        );
        let mut args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        if url.starts_with("rtmps://") {
            args.extend(["-tls_verify".to_string(), "0".to_string()]);
        }
        args.push(url.to_string());
        Publisher::spawn("ffmpeg", &args)
    }

    /// ffmpeg publishing MPEG-TS over SRT (libsrt caller) with stream id `stream_id`:
    /// `video` is `libx264` or `libx265`; `options` are extra libsrt options placed before the
    /// URL (e.g. `["-passphrase", "…", "-pbkeylen", "32"]`).
    pub fn ffmpeg_srt(
        url: &str,
        stream_id: &str,
        options: &[&str],
        seconds: u32,
        video: &str,
    ) -> Publisher {
        Publisher::ffmpeg_srt_size(url, stream_id, options, seconds, video, "640x360")
    }

    /// [`Publisher::ffmpeg_srt`] at another picture size.
    pub fn ffmpeg_srt_size(
        url: &str,
        stream_id: &str,
        options: &[&str],
        seconds: u32,
        video: &str,
        size: &str,
    ) -> Publisher {
        let mut args: Vec<String> = format!(
            "-hide_banner -loglevel warning -nostdin -re \
             -f lavfi -i testsrc2=size={size}:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
             -t {seconds} -c:v {video} -preset veryfast -pix_fmt yuv420p \
             -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 -b:v 800k \
             -c:a aac -ar 48000 -ac 2 -b:a 128k -f mpegts"
        )
        .split_whitespace()
        .map(str::to_string)
        .collect();
        if video == "libx265" {
            args.extend(
                [
                    "-x265-params",
                    "log-level=error:keyint=60:min-keyint=60:scenecut=0",
                ]
                .map(String::from),
            );
        }
        args.extend(["-srt_streamid".to_string(), stream_id.to_string()]);
        args.extend(options.iter().map(|o| o.to_string()));
        args.push(url.to_string());
        Publisher::spawn("ffmpeg", &args)
    }

    /// GStreamer's srtsink (caller) publishing H.264 + AAC in MPEG-TS; `uri` carries the
    /// stream id and other options as query parameters. `alignment=7`: one SRT message per
    /// 7 TS packets (1316 bytes), the SRT live payload; larger buffers do not survive srtsink.
    pub fn srtsink(uri: &str, seconds: u32) -> Publisher {
        let buffers = seconds * 30;
        let audio_buffers = seconds * 48000 / 1024;
        let pipeline = format!(
            "videotestsrc is-live=true num-buffers={buffers} ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
             ! x264enc key-int-max=60 bitrate=800 speed-preset=ultrafast ! h264parse \
             ! mpegtsmux alignment=7 name=mux ! srtsink uri={uri} wait-for-connection=false \
             audiotestsrc is-live=true num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
             ! voaacenc bitrate=128000 ! aacparse ! mux."
        );
        let mut args = vec!["-q".to_string(), "-e".to_string()];
        args.extend(pipeline.split_whitespace().map(str::to_string));
        Publisher::spawn("gst-launch-1.0", &args)
    }

    /// GStreamer's rtmp2sink publishing H.264 + AAC.
    pub fn rtmp2sink(url: &str, seconds: u32) -> Publisher {
        let buffers = seconds * 30;
        let audio_buffers = seconds * 48000 / 1024;
        let pipeline = format!(
            "videotestsrc is-live=true num-buffers={buffers} ! video/x-raw,width=640,height=360,framerate=30/1 \
             ! x264enc key-int-max=60 bitrate=800 speed-preset=ultrafast ! video/x-h264,profile=high ! h264parse \
             ! flvmux name=mux streamable=true ! rtmp2sink location={url} \
             audiotestsrc is-live=true num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
             ! voaacenc bitrate=128000 ! aacparse ! mux."
        );
        let mut args = vec!["-q".to_string(), "-e".to_string()];
        args.extend(pipeline.split_whitespace().map(str::to_string));
        Publisher::spawn("gst-launch-1.0", &args)
    }

    /// Any program as a publisher whose stdin stays open and empty (a caller that connects and
    /// never sends).
    pub fn spawn_program_stdin(program: &str, args: &[String]) -> Publisher {
        Publisher::spawn_with(program, args, Stdio::piped())
    }

    fn spawn(program: &str, args: &[String]) -> Publisher {
        Publisher::spawn_with(program, args, Stdio::null())
    }

    fn spawn_with(program: &str, args: &[String], stdin: Stdio) -> Publisher {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr = dir.path().join("stderr.log");
        let file = std::fs::File::create(&stderr).expect("stderr file");
        let child = Command::new(program)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        Publisher {
            child,
            stderr,
            _dir: dir,
        }
    }

    /// Waits up to `timeout` for exit; the status if it exited.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        super::wait_child(&mut self.child, timeout)
    }

    /// SIGKILL, as when an encoder crashes or its machine loses the network.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
