// Debian's FFmpeg libraries (libavformat, libavcodec, libswresample, libavutil) for AudioEncoding,
// loaded when the first compressed format is encoded rather than when the program starts.
//
// Why: linked at start-up, the four libraries bring ~130 more shared objects (every codec and
// protocol library Debian builds FFmpeg with), ~21 MiB of a cached voice's peak resident memory,
// to a process that may never encode anything but WAV. So `lark` does not link them: it calls
// FFmpeg through the table below, filled by dlopen/dlsym from the libraries whose major versions
// the headers declare. The fields have the functions' own types (`__typeof__`), so a signature
// that changes between FFmpeg versions fails the build, not a call.
#ifndef LARK_FFMPEG_H
#define LARK_FFMPEG_H

#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswresample/swresample.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <errno.h>

static inline int lark_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int lark_averror_eof(void) { return AVERROR_EOF; }
static inline int lark_avseek_size(void) { return AVSEEK_SIZE; }

/// Every FFmpeg function AudioEncoding calls.
#define LARK_FFMPEG_FUNCTIONS(X)                                                                              \
    X(av_audio_fifo_alloc) X(av_audio_fifo_free) X(av_audio_fifo_read) X(av_audio_fifo_size)                  \
    X(av_audio_fifo_write) X(av_channel_layout_copy) X(av_channel_layout_default) X(av_dict_free)             \
    X(av_dict_set) X(av_frame_alloc) X(av_frame_free) X(av_frame_get_buffer) X(av_frame_unref) X(av_free)     \
    X(av_freep) X(av_guess_format) X(av_log_set_level) X(av_malloc) X(av_packet_alloc) X(av_packet_free)      \
    X(av_packet_rescale_ts) X(av_packet_unref) X(av_samples_alloc_array_and_samples)                         \
    X(av_samples_set_silence) X(av_strerror) X(av_write_frame) X(av_write_trailer) X(avcodec_alloc_context3)  \
    X(avcodec_find_encoder_by_name) X(avcodec_free_context) X(avcodec_open2) X(avcodec_parameters_from_context) \
    X(avcodec_receive_packet) X(avcodec_send_frame) X(avformat_alloc_output_context2) X(avformat_free_context) \
    X(avformat_new_stream) X(avformat_write_header) X(avio_alloc_context) X(avio_closep) X(avio_context_free) \
    X(avio_flush) X(avio_open) X(avio_seek) X(avio_size) X(avio_write) X(swr_alloc_set_opts2) X(swr_convert)  \
    X(swr_free) X(swr_get_out_samples) X(swr_init)

typedef struct LarkFFmpeg {
#define LARK_FFMPEG_FIELD(name) __typeof__(name) *_Nonnull name;
    LARK_FFMPEG_FUNCTIONS(LARK_FFMPEG_FIELD)
#undef LARK_FFMPEG_FIELD
} LarkFFmpeg;

/// The functions, the libraries loaded on the first call (thread-safe); NULL when they cannot be
/// loaded, and then `lark_ffmpeg_error` says why.
const LarkFFmpeg *_Nullable lark_ffmpeg(void);
const char *_Nonnull lark_ffmpeg_error(void);

#endif
