// espeak-ng's public API, from Debian's libespeak-ng-dev (found through pkg-config).
#include <espeak-ng/speak_lib.h>
#include <espeak-ng/espeak_ng.h>
