//! `cuecastscale`: the video scaler element of the transcoding ladder's rungs.
//!
//! GStreamer's `videoscale` runs the generic video-converter resampler (ORC, one line at a
//! time); for the ladder's 720p → 480p/360p scales it cost three to four times what ffmpeg's
//! swscale spends on the same scales (BENCHMARKS.md). This element hands each frame to
//! libswscale (FFmpeg's scaler, the one `ffmpeg -vf scale` uses; SIMD on x86 and ARM), bilinear
//! (`SWS_BILINEAR`: a tent filter whose support widens with the downscale factor, so every
//! source pixel contributes). Planar 8-bit YUV (I420, YV12, Y41B, Y42B, Y444, GRAY8) is scaled
//! plane by plane without any colour conversion, as `videoscale chroma-mode=none` does.
//!
//! Negotiation follows `videoscale`: the format passes through, width, height and
//! pixel-aspect-ratio are free on the other side; with equal caps on both sides the element
//! is a passthrough (the 720p rung of a 720p source costs nothing). When only one output
//! dimension is fixed downstream, the other keeps the input's display aspect ratio.
//!
//! Registered statically by [`super::init`] (no plugin file), so templates can name it.

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::{LazyLock, Mutex, PoisonError};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

/// The element's factory name, as templates use it.
pub const ELEMENT_NAME: &str = "cuecastscale";

/// The raw formats the element scales: 8-bit, one component per plane.
const FORMATS: [gst_video::VideoFormat; 6] = [
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Y41b,
    gst_video::VideoFormat::Y42b,
    gst_video::VideoFormat::Y444,
    gst_video::VideoFormat::Gray8,
];

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        ELEMENT_NAME,
        gst::DebugColorFlags::empty(),
        Some("cuecast video scaler (libswscale, bilinear)"),
    )
});

glib::wrapper! {
    /// The `cuecastscale` element.
    pub struct CuecastScale(ObjectSubclass<imp::CuecastScale>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `cuecastscale` with GStreamer (statically, without a plugin).
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(
        None,
        ELEMENT_NAME,
        gst::Rank::NONE,
        CuecastScale::static_type(),
    )
}

/// libswscale (FFmpeg 5.x, `libswscale.so.6`): the three calls the element needs.
mod ffi {
    use super::{c_int, c_void};

    /// `struct SwsContext` (opaque).
    #[repr(C)]
    pub struct SwsContext {
        _private: [u8; 0],
    }

    /// `SWS_BILINEAR` (libswscale/swscale.h).
    pub const SWS_BILINEAR: c_int = 2;

    // SAFETY: the declarations match libswscale 6's swscale.h (FFmpeg 5.x, linked below): the
    // same argument and return types, in order, with the C ABI.
    #[link(name = "swscale")]
    unsafe extern "C" {
        pub fn sws_getContext(
            src_w: c_int,
            src_h: c_int,
            src_format: c_int,
            dst_w: c_int,
            dst_h: c_int,
            dst_format: c_int,
            flags: c_int,
            src_filter: *mut c_void,
            dst_filter: *mut c_void,
            param: *const f64,
        ) -> *mut SwsContext;
        pub fn sws_scale(
            context: *mut SwsContext,
            src_slice: *const *const u8,
            src_stride: *const c_int,
            src_slice_y: c_int,
            src_slice_h: c_int,
            dst: *const *mut u8,
            dst_stride: *const c_int,
        ) -> c_int;
        pub fn sws_freeContext(context: *mut SwsContext);
    }
}

/// A planar 8-bit layout the scaler handles: libswscale's `AVPixelFormat` and the chroma
/// subsampling (log2, horizontal and vertical) of planes 1 and 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanarFormat {
    av_pix_fmt: c_int,
    planes: usize,
    chroma_shift: (u32, u32),
}

impl PlanarFormat {
    /// The layout of a GStreamer format, if the scaler handles it. YV12 is I420 with the
    /// chroma planes swapped: scaling treats them alike, so it maps to the same layout.
    pub fn of(format: gst_video::VideoFormat) -> Option<Self> {
        use gst_video::VideoFormat as F;
        // AVPixelFormat values of FFmpeg's libavutil/pixfmt.h (stable ABI).
        let (av_pix_fmt, planes, chroma_shift) = match format {
            F::I420 | F::Yv12 => (0, 3, (1, 1)),
            F::Y42b => (4, 3, (1, 0)),
            F::Y444 => (5, 3, (0, 0)),
            F::Y41b => (7, 3, (2, 0)),
            F::Gray8 => (8, 1, (0, 0)),
            _ => return None,
        };
        Some(Self {
            av_pix_fmt,
            planes,
            chroma_shift,
        })
    }

    /// Width and height of `plane` of a `width`×`height` frame (chroma sizes round up).
    fn plane_size(&self, plane: usize, width: u32, height: u32) -> (u32, u32) {
        if plane == 0 {
            return (width, height);
        }
        let (h, v) = self.chroma_shift;
        (width.div_ceil(1 << h), height.div_ceil(1 << v))
    }
}

/// One plane of a frame: its bytes (`stride × rows` at least) and its row stride.
pub struct Plane<T> {
    /// The plane's bytes.
    pub data: T,
    /// Bytes from one row to the next.
    pub stride: u32,
}

/// Why a scaler cannot be made or a frame cannot be scaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// A size is zero or does not fit a C `int`.
    #[error("unsupported size {input:?} → {output:?}")]
    UnsupportedSize {
        /// Input (width, height).
        input: (u32, u32),
        /// Output (width, height).
        output: (u32, u32),
    },
    /// libswscale returned no context for these sizes.
    #[error("libswscale refused {input:?} → {output:?}")]
    Refused {
        /// Input (width, height).
        input: (u32, u32),
        /// Output (width, height).
        output: (u32, u32),
    },
    /// The frame has another number of planes than the format.
    #[error("{0} planes expected")]
    PlaneCount(usize),
    /// A plane's bytes cannot hold its rows at its stride, or its stride is below its width.
    #[error("{side} plane {plane}: {width}x{height} does not fit {len} bytes with stride {stride}")]
    PlaneTooSmall {
        /// `"input"` or `"output"`.
        side: &'static str,
        /// The plane's index.
        plane: usize,
        /// The plane's width.
        width: u32,
        /// The plane's height.
        height: u32,
        /// The plane's bytes.
        len: usize,
        /// The plane's stride.
        stride: u32,
    },
    /// A plane's stride does not fit a C `int`.
    #[error("{side} plane {plane}: stride {stride}")]
    Stride {
        /// `"input"` or `"output"`.
        side: &'static str,
        /// The plane's index.
        plane: usize,
        /// The plane's stride.
        stride: u32,
    },
    /// libswscale wrote fewer rows than the output has.
    #[error("libswscale wrote {rows} of {expected} rows")]
    Rows {
        /// Rows written.
        rows: c_int,
        /// The output's height.
        expected: u32,
    },
}

/// A libswscale context for one input size → output size, bilinear.
pub struct Scaler {
    context: NonNull<ffi::SwsContext>,
    format: PlanarFormat,
    input: (u32, u32),
    output: (u32, u32),
}

// SAFETY: a SwsContext has no thread affinity; `Scaler` gives access to it through `&mut self`
// only, so it is never used from two threads at once.
unsafe impl Send for Scaler {}

impl Scaler {
    /// A scaler from `input` to `output` (width, height) frames of `format`.
    pub fn new(
        format: PlanarFormat,
        input: (u32, u32),
        output: (u32, u32),
    ) -> Result<Self, ScaleError> {
        let dim = |v: u32| c_int::try_from(v).ok().filter(|&v| v > 0);
        let (Some(iw), Some(ih), Some(ow), Some(oh)) =
            (dim(input.0), dim(input.1), dim(output.0), dim(output.1))
        else {
            return Err(ScaleError::UnsupportedSize { input, output });
        };
        // SAFETY: plain values (sizes positive and within `c_int`, checked above; a pixel format
        // from `PlanarFormat::of`); null filters and parameters select libswscale's defaults.
        // The returned pointer is checked for null before use.
        let context = unsafe {
            ffi::sws_getContext(
                iw,
                ih,
                format.av_pix_fmt,
                ow,
                oh,
                format.av_pix_fmt,
                ffi::SWS_BILINEAR,
                std::ptr::null_mut::<c_void>(),
                std::ptr::null_mut::<c_void>(),
                std::ptr::null(),
            )
        };
        let context = NonNull::new(context).ok_or(ScaleError::Refused { input, output })?;
        Ok(Self {
            context,
            format,
            input,
            output,
        })
    }

    /// Scales one frame: `src` planes of the input size into `dst` planes of the output size.
    /// Every plane must hold `stride × rows` bytes with `stride` ≥ its width.
    pub fn scale(
        &mut self,
        src: &[Plane<&[u8]>],
        dst: &mut [Plane<&mut [u8]>],
    ) -> Result<(), ScaleError> {
        let planes = self.format.planes;
        if src.len() != planes || dst.len() != planes {
            return Err(ScaleError::PlaneCount(planes));
        }
        let check = |plane: usize, len: usize, stride: u32, (w, h): (u32, u32), side| {
            let (width, height) = self.format.plane_size(plane, w, h);
            if stride < width || (len as u64) < u64::from(stride) * u64::from(height) {
                return Err(ScaleError::PlaneTooSmall {
                    side,
                    plane,
                    width,
                    height,
                    len,
                    stride,
                });
            }
            c_int::try_from(stride).map_err(|_| ScaleError::Stride {
                side,
                plane,
                stride,
            })
        };
        let mut src_ptr = [std::ptr::null::<u8>(); 4];
        let mut src_stride = [0 as c_int; 4];
        let mut dst_ptr = [std::ptr::null_mut::<u8>(); 4];
        let mut dst_stride = [0 as c_int; 4];
        for (i, plane) in src.iter().enumerate() {
            src_stride[i] = check(i, plane.data.len(), plane.stride, self.input, "input")?;
            src_ptr[i] = plane.data.as_ptr();
        }
        for (i, plane) in dst.iter_mut().enumerate() {
            dst_stride[i] = check(i, plane.data.len(), plane.stride, self.output, "output")?;
            dst_ptr[i] = plane.data.as_mut_ptr();
        }
        // SAFETY: the context was made for these sizes and this format; every plane pointer
        // covers stride × rows bytes of its plane (checked above), the only memory libswscale
        // reads (src) or writes (dst) for a full-height slice; `dst` is borrowed mutably.
        let rows = unsafe {
            ffi::sws_scale(
                self.context.as_ptr(),
                src_ptr.as_ptr(),
                src_stride.as_ptr(),
                0,
                self.input.1 as c_int,
                dst_ptr.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows == self.output.1 as c_int {
            Ok(())
        } else {
            Err(ScaleError::Rows {
                rows,
                expected: self.output.1,
            })
        }
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: the context came from sws_getContext (non-null, checked in `new`), is owned by
        // this `Scaler` alone and is freed once, here; nothing uses it afterwards.
        unsafe { ffi::sws_freeContext(self.context.as_ptr()) }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct CuecastScale {
        /// The libswscale context for the negotiated sizes (None when passing through).
        scaler: Mutex<Option<Scaler>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CuecastScale {
        const NAME: &'static str = "CuecastScale";
        type Type = super::CuecastScale;
        type ParentType = gst_video::VideoFilter;
    }

    impl ObjectImpl for CuecastScale {}

    impl GstObjectImpl for CuecastScale {}

    impl ElementImpl for CuecastScale {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "cuecast video scaler",
                    "Filter/Converter/Video/Scaler",
                    "Scales planar 8-bit YUV plane by plane with libswscale, bilinear",
                    "cuecast",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst_video::VideoCapsBuilder::new()
                    .format_list(FORMATS)
                    .build();
                [gst::PadDirection::Src, gst::PadDirection::Sink]
                    .into_iter()
                    .map(|direction| {
                        let name = if direction == gst::PadDirection::Src {
                            "src"
                        } else {
                            "sink"
                        };
                        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps)
                            .expect("static pad template")
                    })
                    .collect()
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for CuecastScale {
        const MODE: gst_base::subclass::BaseTransformMode =
            gst_base::subclass::BaseTransformMode::NeverInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = true;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        fn transform_caps(
            &self,
            _direction: gst::PadDirection,
            caps: &gst::Caps,
            filter: Option<&gst::Caps>,
        ) -> Option<gst::Caps> {
            // The same caps first (passthrough preferred), then any size and aspect ratio.
            let mut free = caps.clone();
            for s in free.make_mut().iter_mut() {
                s.set("width", gst::IntRange::new(1, i32::MAX));
                s.set("height", gst::IntRange::new(1, i32::MAX));
                if s.has_field("pixel-aspect-ratio") {
                    s.set(
                        "pixel-aspect-ratio",
                        gst::FractionRange::new(
                            gst::Fraction::new(1, i32::MAX),
                            gst::Fraction::new(i32::MAX, 1),
                        ),
                    );
                }
            }
            let mut result = caps.clone();
            result.merge(free);
            gst::debug!(CAT, imp = self, "transformed {caps} into {result}");
            Some(match filter {
                Some(filter) => filter.intersect_with_mode(&result, gst::CapsIntersectMode::First),
                None => result,
            })
        }

        fn fixate_caps(
            &self,
            _direction: gst::PadDirection,
            caps: &gst::Caps,
            othercaps: gst::Caps,
        ) -> gst::Caps {
            let mut othercaps = othercaps;
            othercaps.truncate();
            let Some(from) = caps.structure(0) else {
                othercaps.fixate();
                return othercaps;
            };
            let (Ok(in_w), Ok(in_h)) = (from.get::<i32>("width"), from.get::<i32>("height")) else {
                othercaps.fixate();
                return othercaps;
            };
            let in_par = from
                .get::<gst::Fraction>("pixel-aspect-ratio")
                .unwrap_or(gst::Fraction::new(1, 1));
            if let Some(s) = othercaps.make_mut().structure_mut(0) {
                if s.has_field("pixel-aspect-ratio") {
                    s.fixate_field_nearest_fraction("pixel-aspect-ratio", in_par);
                }
                let out_par = s
                    .get::<gst::Fraction>("pixel-aspect-ratio")
                    .unwrap_or(gst::Fraction::new(1, 1));
                // Display aspect ratio of the input, in output pixels: width / height.
                let dar = f64::from(in_w) * f64::from(in_par.numer()) * f64::from(out_par.denom())
                    / (f64::from(in_h) * f64::from(in_par.denom()) * f64::from(out_par.numer()));
                let fixed = |s: &gst::StructureRef, field: &str| s.get::<i32>(field).ok();
                match (fixed(s, "width"), fixed(s, "height")) {
                    (Some(w), None) => {
                        s.fixate_field_nearest_int("height", (f64::from(w) / dar).round() as i32);
                    }
                    (None, Some(h)) => {
                        s.fixate_field_nearest_int("width", (f64::from(h) * dar).round() as i32);
                    }
                    _ => {
                        s.fixate_field_nearest_int("width", in_w);
                        s.fixate_field_nearest_int("height", in_h);
                    }
                }
            }
            othercaps.fixate();
            othercaps
        }

        fn stop(&self) -> Result<(), gst::ErrorMessage> {
            *self.scaler.lock().unwrap_or_else(PoisonError::into_inner) = None;
            Ok(())
        }
    }

    impl VideoFilterImpl for CuecastScale {
        fn set_info(
            &self,
            _incaps: &gst::Caps,
            in_info: &gst_video::VideoInfo,
            _outcaps: &gst::Caps,
            out_info: &gst_video::VideoInfo,
        ) -> Result<(), gst::LoggableError> {
            let mut scaler = self.scaler.lock().unwrap_or_else(PoisonError::into_inner);
            *scaler = None;
            let size = |info: &gst_video::VideoInfo| (info.width(), info.height());
            if size(in_info) == size(out_info) {
                return Ok(());
            }
            let format = PlanarFormat::of(in_info.format())
                .filter(|_| in_info.format() == out_info.format())
                .ok_or_else(|| {
                    gst::loggable_error!(
                        CAT,
                        "cannot scale {:?} to {:?}",
                        in_info.format(),
                        out_info.format()
                    )
                })?;
            *scaler = Some(
                Scaler::new(format, size(in_info), size(out_info))
                    .map_err(|e| gst::loggable_error!(CAT, "{e}"))?,
            );
            gst::debug!(CAT, imp = self, "scaling {in_info:?} to {out_info:?}");
            Ok(())
        }

        fn transform_frame(
            &self,
            inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
            outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mut scaler = self.scaler.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(scaler) = scaler.as_mut() else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ["frame to scale before the sizes were negotiated"]
                );
                return Err(gst::FlowError::NotNegotiated);
            };
            let n = inframe.n_planes() as usize;
            let strides = |frame: &[i32]| -> Option<Vec<u32>> {
                frame[..n].iter().map(|&s| u32::try_from(s).ok()).collect()
            };
            let (Some(in_strides), Some(out_strides)) = (
                strides(inframe.plane_stride()),
                strides(outframe.plane_stride()),
            ) else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ["negative plane strides are not supported"]
                );
                return Err(gst::FlowError::NotSupported);
            };
            let src: Vec<Plane<&[u8]>> = inframe.planes_data()[..n]
                .iter()
                .zip(&in_strides)
                .map(|(&data, &stride)| Plane { data, stride })
                .collect();
            let mut dst: Vec<Plane<&mut [u8]>> = outframe
                .planes_data_mut()
                .into_iter()
                .take(n)
                .zip(&out_strides)
                .map(|(data, &stride)| Plane { data, stride })
                .collect();
            if let Err(reason) = scaler.scale(&src, &mut dst) {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ["scaling failed: {reason}"]
                );
                return Err(gst::FlowError::Error);
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::run_to_appsink;

    /// A `width`×`height` plane with `stride`-byte rows: `value(x, y)` in the picture, `pad`
    /// in the row padding.
    fn plane(
        width: u32,
        height: u32,
        stride: u32,
        pad: u8,
        value: impl Fn(u32, u32) -> u8,
    ) -> Vec<u8> {
        let mut data = vec![pad; stride as usize * height as usize];
        for y in 0..height {
            for x in 0..width {
                data[(y * stride + x) as usize] = value(x, y);
            }
        }
        data
    }

    /// Scales one GRAY8 plane.
    fn scale_gray(
        src: &[u8],
        (sw, sh, ss): (u32, u32, u32),
        dst: &mut [u8],
        (dw, dh, ds): (u32, u32, u32),
    ) -> Result<(), ScaleError> {
        let format = PlanarFormat::of(gst_video::VideoFormat::Gray8).unwrap();
        let mut scaler = Scaler::new(format, (sw, sh), (dw, dh))?;
        scaler.scale(
            &[Plane {
                data: src,
                stride: ss,
            }],
            &mut [Plane {
                data: dst,
                stride: ds,
            }],
        )
    }

    #[test]
    fn a_gradient_is_scaled_to_the_values_at_the_mapped_positions() {
        // 1280×720 → 854×480 (the ladder's 480p scale) of a horizontal and a vertical ramp,
        // with padded rows on both sides (libswscale may use the row padding as scratch).
        let (sw, sh, ss) = (1280, 720, 1296);
        let (dw, dh, ds) = (854, 480, 864);
        let ramp = |v: u32, size: u32| (f64::from(v) * 250.0 / f64::from(size - 1)).round() as u8;
        for vertical in [false, true] {
            let src = plane(sw, sh, ss, 0, |x, y| {
                if vertical { ramp(y, sh) } else { ramp(x, sw) }
            });
            // 64 bytes past the plane: never written.
            let mut dst = vec![0xAA; (ds * dh) as usize + 64];
            scale_gray(&src, (sw, sh, ss), &mut dst, (dw, dh, ds)).unwrap();
            assert!(dst[(ds * dh) as usize..].iter().all(|&b| b == 0xAA));
            for y in 0..dh {
                for x in 0..dw {
                    let (o, size, out) = if vertical { (y, sh, dh) } else { (x, sw, dw) };
                    // The output pixel's centre, in source pixels.
                    let at = (f64::from(o) + 0.5) * f64::from(size) / f64::from(out) - 0.5;
                    let expected = at * 250.0 / f64::from(size - 1);
                    let got = f64::from(dst[(y * ds + x) as usize]);
                    // Away from the edges (where the filter is cut) within rounding.
                    if o >= 2 && o + 2 < out {
                        assert!(
                            (got - expected).abs() <= 1.5,
                            "vertical {vertical} ({x},{y}): {got} vs {expected:.2}"
                        );
                    }
                }
            }
        }
    }

    /// One 1280×720 testsrc2 frame as raw I420 from ffmpeg, scaled by ffmpeg's own `scale`
    /// filter to `out` (`None`: unscaled).
    fn ffmpeg_frame(out: Option<(u32, u32)>) -> Vec<u8> {
        let mut args = vec![
            "-hide_banner".to_string(),
            "-loglevel".into(),
            "error".into(),
            "-nostdin".into(),
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "testsrc2=size=1280x720:rate=30".into(),
            "-frames:v".into(),
            "1".into(),
        ];
        if let Some((w, h)) = out {
            args.extend(["-vf".into(), format!("scale={w}:{h}:flags=bilinear")]);
        }
        args.extend(["-pix_fmt", "yuv420p", "-f", "rawvideo", "-"].map(String::from));
        let output = std::process::Command::new("ffmpeg")
            .args(&args)
            .output()
            .expect("run ffmpeg");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Splits a tightly packed I420 frame into its planes.
    fn i420_planes(data: &[u8], width: u32, height: u32) -> [(usize, usize, u32); 3] {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let luma = (width * height) as usize;
        let chroma = (cw * ch) as usize;
        assert_eq!(data.len(), luma + 2 * chroma, "I420 frame size");
        [
            (0, luma, width),
            (luma, luma + chroma, cw),
            (luma + chroma, luma + 2 * chroma, cw),
        ]
    }

    #[test]
    fn scales_exactly_like_ffmpegs_bilinear_scale_filter() {
        // The ladder bench compares cuecast with `ffmpeg -vf scale=W:H:flags=bilinear`: the
        // same frame scaled by both must be the same bytes, for the ladder's two scales.
        let source = ffmpeg_frame(None);
        let format = PlanarFormat::of(gst_video::VideoFormat::I420).unwrap();
        for (w, h) in [(854, 480), (640, 360)] {
            let reference = ffmpeg_frame(Some((w, h)));
            let mut scaled = vec![0u8; reference.len()];
            let src_layout = i420_planes(&source, 1280, 720);
            let dst_layout = i420_planes(&scaled, w, h);
            let src: Vec<Plane<&[u8]>> = src_layout
                .iter()
                .map(|&(start, end, stride)| Plane {
                    data: &source[start..end],
                    stride,
                })
                .collect();
            let (y, rest) = scaled.split_at_mut(dst_layout[1].0);
            let (u, v) = rest.split_at_mut(dst_layout[2].0 - dst_layout[1].0);
            let mut dst = [y, u, v]
                .into_iter()
                .zip(&dst_layout)
                .map(|(data, &(_, _, stride))| Plane { data, stride })
                .collect::<Vec<_>>();
            Scaler::new(format, (1280, 720), (w, h))
                .unwrap()
                .scale(&src, &mut dst)
                .unwrap();
            let differing = scaled
                .iter()
                .zip(&reference)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                differing, 0,
                "{w}x{h}: {differing} bytes differ from ffmpeg's"
            );
        }
    }

    #[test]
    fn odd_sizes_keep_flat_areas_flat_and_edges_sharp_enough() {
        // 641×361 → 321×181: left half 40, right half 200, padded rows.
        let (sw, sh, ss) = (641, 361, 644);
        let (dw, dh, ds) = (321, 181, 324);
        let src = plane(sw, sh, ss, 7, |x, _| if x < 320 { 40 } else { 200 });
        let mut dst = vec![0; (ds * dh) as usize];
        scale_gray(&src, (sw, sh, ss), &mut dst, (dw, dh, ds)).unwrap();
        for y in 0..dh {
            let row = &dst[(y * ds) as usize..(y * ds + dw) as usize];
            assert!(
                row[..155].iter().all(|&v| v == 40),
                "row {y} left: {:?}",
                &row[..155]
            );
            assert!(row[165..].iter().all(|&v| v == 200), "row {y} right");
            // Bilinear: the step spreads over a few pixels, monotonically.
            assert!(
                row[155..165].windows(2).all(|w| w[0] <= w[1]),
                "row {y} edge"
            );
        }
    }

    #[test]
    fn planes_too_small_for_their_size_and_stride_are_refused() {
        let src = vec![0; 100 * 99];
        let mut dst = vec![0; 50 * 50];
        let err = scale_gray(&src, (100, 100, 100), &mut dst, (50, 50, 50))
            .unwrap_err()
            .to_string();
        assert!(err.contains("input plane 0"), "{err}");
        let src = vec![0; 100 * 100];
        let err = scale_gray(&src, (100, 100, 100), &mut dst, (50, 50, 52))
            .unwrap_err()
            .to_string();
        assert!(err.contains("output plane 0"), "{err}");
        let err = scale_gray(&src, (100, 100, 99), &mut dst, (50, 50, 50))
            .unwrap_err()
            .to_string();
        assert!(err.contains("stride 99"), "{err}");
        // I420 chroma planes are checked too (rounded up: 51×51 → 26×26 chroma).
        let format = PlanarFormat::of(gst_video::VideoFormat::I420).unwrap();
        let mut scaler = Scaler::new(format, (51, 51), (20, 20)).unwrap();
        let (y, u, v) = (vec![0; 51 * 51], vec![0; 26 * 26], vec![0; 26 * 25]);
        let (mut oy, mut ou, mut ov) = (vec![0; 400], vec![0; 100], vec![0; 100]);
        let err = scaler
            .scale(
                &[
                    Plane {
                        data: &y,
                        stride: 51,
                    },
                    Plane {
                        data: &u,
                        stride: 26,
                    },
                    Plane {
                        data: &v,
                        stride: 26,
                    },
                ],
                &mut [
                    Plane {
                        data: &mut oy,
                        stride: 20,
                    },
                    Plane {
                        data: &mut ou,
                        stride: 10,
                    },
                    Plane {
                        data: &mut ov,
                        stride: 10,
                    },
                ],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("input plane 2: 26x26"), "{err}");
        assert!(Scaler::new(format, (0, 51), (20, 20)).is_err());
    }

    /// Runs `videotestsrc` (`pattern`, 3 frames of `caps_in`) through `scaler` into `caps_out`.
    fn scaled(pattern: &str, caps_in: &str, scaler: &str, caps_out: &str) -> Vec<gst::Sample> {
        run_to_appsink(&format!(
            "videotestsrc num-buffers=3 pattern={pattern} ! {caps_in} ! {scaler} ! {caps_out} \
             ! appsink name=out sync=false"
        ))
    }

    fn frame_info(sample: &gst::Sample) -> gst_video::VideoInfo {
        gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap()
    }

    #[test]
    fn the_element_scales_i420_frames_to_the_downstream_size() {
        for (w, h) in [(854, 480), (640, 360), (321, 179)] {
            let samples = scaled(
                "smpte",
                "video/x-raw,format=I420,width=1280,height=720",
                ELEMENT_NAME,
                &format!("video/x-raw,width={w},height={h}"),
            );
            assert_eq!(samples.len(), 3);
            let info = frame_info(&samples[0]);
            assert_eq!((info.width(), info.height()), (w, h));
            assert_eq!(info.format(), gst_video::VideoFormat::I420);
        }
    }

    #[test]
    fn the_element_matches_videoscale_bilinear_output_closely() {
        // Same source and size through videoscale (reference bilinear) and cuecastscale; the
        // two differ only in filter details at edges, so the mean difference per sample is
        // small on every plane.
        let caps_in =
            "video/x-raw,format=I420,width=1280,height=720,colorimetry=bt709,chroma-site=mpeg2";
        let caps_out = "video/x-raw,width=854,height=480";
        let ours = scaled("smpte", caps_in, ELEMENT_NAME, caps_out);
        let reference = scaled(
            "smpte",
            caps_in,
            "videoscale method=bilinear chroma-mode=none",
            caps_out,
        );
        let ours = ours[0].buffer().unwrap().map_readable().unwrap();
        let reference = reference[0].buffer().unwrap().map_readable().unwrap();
        assert_eq!(ours.len(), reference.len());
        let diff: u64 = ours
            .iter()
            .zip(reference.iter())
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        let mean = diff as f64 / ours.len() as f64;
        assert!(mean < 2.0, "mean difference {mean:.2} per byte");
        // …and it is not a copy of the reference's bytes by accident of passthrough.
        assert!(mean > 0.0);
    }

    #[test]
    fn equal_caps_pass_through_and_other_planar_formats_scale() {
        let samples = scaled(
            "ball",
            "video/x-raw,format=I420,width=320,height=240",
            ELEMENT_NAME,
            "video/x-raw,width=320,height=240",
        );
        assert_eq!(frame_info(&samples[0]).width(), 320);
        for format in ["Y444", "Y42B", "YV12", "GRAY8"] {
            let samples = scaled(
                "smpte",
                &format!("video/x-raw,format={format},width=640,height=480"),
                ELEMENT_NAME,
                "video/x-raw,width=320,height=240",
            );
            let info = frame_info(&samples[0]);
            assert_eq!(info.format().to_str(), format);
            assert_eq!((info.width(), info.height()), (320, 240));
        }
    }

    #[test]
    fn one_fixed_output_dimension_keeps_the_display_aspect_ratio() {
        let samples = scaled(
            "smpte",
            "video/x-raw,format=I420,width=1280,height=720,pixel-aspect-ratio=1/1",
            ELEMENT_NAME,
            "video/x-raw,width=640",
        );
        let info = frame_info(&samples[0]);
        assert_eq!((info.width(), info.height()), (640, 360));
    }
}
