// Debian's FFmpeg libraries (libavformat, libavcodec, libswresample, libavutil), for
// AudioEncoding. The inline functions expose values that C macros hide from Swift.
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
