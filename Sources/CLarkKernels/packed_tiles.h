// The packed FP32 kernels' register-tile copies, one per (taps, vectors), and the table that picks
// one: the same list for AVX-512 (direct_conv_avx512.c) and AVX2 (direct_conv_avx2.c). The file
// that includes this defines PACKED_TILE_TARGET (its `target` attribute), its `Epilogue` type and
// an always-inline `tile(s, ss, w, cin, k, d, vectors, e)`; each copy fixes `vectors` and, for
// the common kernel sizes, `k`, so the compiler unrolls the loops and keeps the accumulators in
// registers.
#ifndef LARK_PACKED_TILES_H
#define LARK_PACKED_TILES_H

typedef void (*Tile)(const float *s, int64_t ss, const float *w, int64_t cin, int64_t k, int64_t d, const Epilogue *e);

#define PACKED_TILE(name, taps, vectors)                                                                                          \
    PACKED_TILE_TARGET static void name(const float *s, int64_t ss, const float *w, int64_t cin, int64_t k, int64_t d, const Epilogue *e) { \
        (void)k;                                                                                                                  \
        tile(s, ss, w, cin, taps, d, vectors, e);                                                                                 \
    }
PACKED_TILE(tile_k1_v1, 1, 1)
PACKED_TILE(tile_k1_v2, 1, 2)
PACKED_TILE(tile_k1_v3, 1, 3)
PACKED_TILE(tile_k2_v1, 2, 1)
PACKED_TILE(tile_k2_v2, 2, 2)
PACKED_TILE(tile_k2_v3, 2, 3)
PACKED_TILE(tile_k3_v1, 3, 1)
PACKED_TILE(tile_k3_v2, 3, 2)
PACKED_TILE(tile_k3_v3, 3, 3)
PACKED_TILE(tile_k5_v1, 5, 1)
PACKED_TILE(tile_k5_v2, 5, 2)
PACKED_TILE(tile_k5_v3, 5, 3)
PACKED_TILE(tile_k7_v1, 7, 1)
PACKED_TILE(tile_k7_v2, 7, 2)
PACKED_TILE(tile_k7_v3, 7, 3)
PACKED_TILE(tile_kn_v1, k, 1)
PACKED_TILE(tile_kn_v2, k, 2)
PACKED_TILE(tile_kn_v3, k, 3)
#undef PACKED_TILE

/// The copy for `k` taps and `vectors` (1–3) vectors.
static Tile tile_for(int64_t k, int vectors) {
    static const Tile tiles[6][3] = {
        {tile_k3_v1, tile_k3_v2, tile_k3_v3},
        {tile_k5_v1, tile_k5_v2, tile_k5_v3},
        {tile_k7_v1, tile_k7_v2, tile_k7_v3},
        {tile_kn_v1, tile_kn_v2, tile_kn_v3},
        {tile_k1_v1, tile_k1_v2, tile_k1_v3},  // Winograd's products (winograd.c): 1 or 2 pieces
        {tile_k2_v1, tile_k2_v2, tile_k2_v3},
    };
    const int row = k == 3 ? 0 : k == 5 ? 1 : k == 7 ? 2 : k == 1 ? 4 : k == 2 ? 5 : 3;
    return tiles[row][vectors - 1];
}

#endif
