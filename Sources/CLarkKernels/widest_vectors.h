// WIDEST_VECTORS: a plain C loop compiled for AVX-512 and AVX2 as well as the baseline on x86-64
// Linux, the copy chosen when the program loads (an ifunc). Baseline x86-64 is SSE2 (4 lanes), which
// left the element-wise loops of gated_tanh.c, subpixel_interleave.c and residual_stack.c slower
// than they need be.
#ifndef LARK_WIDEST_VECTORS_H
#define LARK_WIDEST_VECTORS_H

#if defined(__x86_64__) && defined(__linux__)
#define WIDEST_VECTORS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDEST_VECTORS
#endif

#endif
