// Loads FFmpeg's libraries on first use (see lark_ffmpeg.h for why): by their sonames, from the
// major versions of the headers this was built against, so that a library of another major
// version (another ABI) is never bound to these declarations.
#include "lark_ffmpeg.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static LarkFFmpeg table;
static _Atomic(const LarkFFmpeg *) loaded;
static char error[512] = "FFmpeg's libraries were not loaded";

enum { LIBRARIES = 4 };

static void load(void) {
    // Dependencies first, so that each dlopen finds the ones before it already in the process.
    const char *names[LIBRARIES] = {"avutil", "swresample", "avcodec", "avformat"};
    const int majors[LIBRARIES] = {LIBAVUTIL_VERSION_MAJOR, LIBSWRESAMPLE_VERSION_MAJOR, LIBAVCODEC_VERSION_MAJOR, LIBAVFORMAT_VERSION_MAJOR};
    void *libraries[LIBRARIES];
    for (int i = 0; i < LIBRARIES; i++) {
        char soname[64];
        snprintf(soname, sizeof soname, "lib%s.so.%d", names[i], majors[i]);
        // RTLD_LOCAL: their symbols serve the table only, never the rest of the process.
        if (!(libraries[i] = dlopen(soname, RTLD_NOW | RTLD_LOCAL))) {
            snprintf(error, sizeof error, "cannot load FFmpeg's %s: %s", soname, dlerror());
            return;
        }
    }
#define RESOLVE(name)                                                                                 \
    for (int i = 0; i < LIBRARIES && !table.name; i++) *(void **)&table.name = dlsym(libraries[i], #name); \
    if (!table.name) {                                                                                \
        snprintf(error, sizeof error, "FFmpeg's libraries have no %s", #name);                       \
        return;                                                                                       \
    }
    LARK_FFMPEG_FUNCTIONS(RESOLVE)
#undef RESOLVE
    atomic_store(&loaded, &table);
}

const LarkFFmpeg *lark_ffmpeg(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, load);
    return atomic_load(&loaded);
}

const char *lark_ffmpeg_error(void) { return error; }
