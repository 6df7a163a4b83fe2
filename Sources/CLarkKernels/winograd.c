// Winograd (Toom-Cook) 1-D convolution for DirectConv's sub-problems: fewer multiply-adds for the
// dilated convolutions of the fused HiFi-GAN levels (residual_stack.c), whose direct kernel
// already runs near the CPU's FMA peak.
//
// A convolution of K taps at dilation d, y[t] = Σ_k w[k] s[t + k·d] (s the padded, activated
// input), is d independent dense convolutions over the phases t mod d. F(m, r) computes m
// consecutive outputs of a phase from m + r − 1 inputs with n = m + r − 1 products in a
// transformed domain instead of m·r; kernels longer than r are cut into `pieces` of r taps (then
// r = m), piece j sitting j·m phase positions, i.e. j anchors, later.
//
// Layout: the anchors of all phases in "u order", u = a·d + ρ for anchor a (output times
// a·m·d + i·d + ρ, i < m) and phase ρ < d. In u order a shift of one anchor is a shift of d, so
// the transformed-domain product of point p is itself a dilated convolution of `pieces` taps at
// dilation d with no activation or bias:
//   M_p[o][u] = Σ_j Σ_c U_{p,j}[o][c] · V_p[c][u + j·d]
// which DirectConv's packed AVX-512 or AVX2 kernel (or its generic micro-kernels) runs unchanged, with
// U_p packed like any weight. The input transform reads m rows R_i[u] = s[t(u) + i·d] (the
// input gathered once into u order) and the output gathers the m rows Y_i back into time order
// with bias, residual and post-activation, as lark_direct_conv_finish does.
//
// Transforms from the points (0, 1, −1, 2, −2, 1/2, −1/2, ...) and infinity, built in double at
// plan time: A^T[i][p] = a_p^i, G[p][l] = a_p^l / Π_{q≠p}(a_p − a_q), B^T[p] = the coefficients
// of Π_{q≠p}(x − a_q) (infinity: of Π_q(x − a_q)).
#include "direct_conv.h"
#include "winograd_tables.h"

#include <stdlib.h>
#include <string.h>

static const double points[] = {0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, 1.0 / 3, -1.0 / 3};

int lark_winograd_plan(LarkWinograd *plan, int64_t kernel, int64_t m, int64_t r) {
    memset(plan, 0, sizeof *plan);
    if (m < 1 || r < 1 || kernel < 1 || m > LARK_WINOGRAD_MAX_OUTPUTS) return -1;
    const int64_t pieces = (kernel + r - 1) / r, n = m + r - 1;
    if (n > LARK_WINOGRAD_MAX_POINTS || (pieces > 1 && r != m)) return -1;
    plan->m = m, plan->r = r, plan->n = n, plan->pieces = pieces;
    const int64_t finite = n - 1;
    for (int64_t p = 0; p < n; p++) {
        // Π_{q≠p}(x − a_q) over the finite points (all of them for the point at infinity), by
        // multiplying out one factor at a time; its coefficients in increasing powers.
        double poly[LARK_WINOGRAD_MAX_POINTS + 1] = {1};
        int64_t degree = 0;
        double at_p = 1;  // the same product evaluated at a_p
        for (int64_t q = 0; q < finite; q++) {
            if (q == p) continue;
            for (int64_t e = degree + 1; e >= 1; e--) poly[e] = poly[e - 1] - points[q] * poly[e];
            poly[0] = -points[q] * poly[0];
            degree++;
            if (p < finite) at_p *= points[p] - points[q];
        }
        for (int64_t l = 0; l < n; l++) plan->bt[p][l] = (float)(l <= degree ? poly[l] : 0);
        for (int64_t l = 0; l < r; l++) {
            double power = 1;
            for (int64_t e = 0; e < l && p < finite; e++) power *= points[p];
            plan->g[p][l] = p < finite ? power / at_p : (l == r - 1 ? 1 : 0);
        }
        for (int64_t i = 0; i < m; i++) {
            double power = 1;
            for (int64_t e = 0; e < i && p < finite; e++) power *= points[p];
            plan->at[i][p] = (float)(p < finite ? power : (i == m - 1 ? 1 : 0));
        }
    }
    return 0;
}

/// Where the transformed weights lie: the packed U_p of every point first (when the packed path
/// runs), then the plain U_p (when some output channels, or all of them, run on the generic
/// micro-kernels). Only what the path reads is kept: both would be 2·n/K times W's size (3.2× for
/// F(4,5)), and a voice has tens of megabytes of such weights.
typedef struct WeightLayout {
    int64_t per_point, packed_per_point;  // floats of one point's plain and packed U_p
    int64_t plain_at;  // where the plain U_p begin (the packed ones' total)
    int keeps_plain;
} WeightLayout;

static WeightLayout weight_layout(const LarkWinograd *plan, int64_t output_channels, int64_t input_channels, int fp32_packed) {
    fp32_packed = fp32_packed && lark_packed_available();  // the packed U_p are the same for every packed ISA
    const int64_t per_point = output_channels * input_channels * plan->pieces;
    const int64_t packed_per_point = fp32_packed ? lark_packed_weight_floats(output_channels, input_channels, plan->pieces) : 0;
    return (WeightLayout){
        .per_point = per_point, .packed_per_point = packed_per_point, .plain_at = plan->n * packed_per_point,
        .keeps_plain = !fp32_packed || output_channels % LARK_PACKED_CHANNELS != 0,
    };
}

int64_t lark_winograd_weight_floats(const LarkWinograd *plan, int64_t output_channels, int64_t input_channels, int fp32_packed) {
    const WeightLayout layout = weight_layout(plan, output_channels, input_channels, fp32_packed);
    return layout.plain_at + (layout.keeps_plain ? plan->n * layout.per_point : 0) + 1;
}

int lark_winograd_weights(const LarkWinograd *plan, const float *w, int64_t output_channels, int64_t input_channels, int64_t kernel,
                          int fp32_packed, float *out) {
    const WeightLayout layout = weight_layout(plan, output_channels, input_channels, fp32_packed);
    const int64_t pieces = plan->pieces, r = plan->r;
    float *u = layout.keeps_plain ? NULL : malloc((size_t)layout.per_point * sizeof(float));  // one point's plain U_p
    if (!layout.keeps_plain && !u) return -1;
    for (int64_t p = 0; p < plan->n; p++) {
        float *plain = layout.keeps_plain ? out + layout.plain_at + p * layout.per_point : u;
        for (int64_t o = 0; o < output_channels; o++)
            for (int64_t c = 0; c < input_channels; c++)
                for (int64_t j = 0; j < pieces; j++) {
                    double sum = 0;
                    for (int64_t l = 0; l < r && j * r + l < kernel; l++) sum += plan->g[p][l] * w[(o * input_channels + c) * kernel + j * r + l];
                    plain[(o * input_channels + c) * pieces + j] = (float)sum;
                }
        if (layout.packed_per_point) lark_pack_weights(plain, output_channels, input_channels, pieces, out + p * layout.packed_per_point);
    }
    free(u);
    return 0;
}

/// The longest anchor period (m·d) phase order takes.
#define LARK_WINOGRAD_MAX_PERIOD 128

static int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

/// act(row[at]) with the slope `alpha` for negatives (1: none), zero outside [0, length): one
/// element of a gathered row, where a vector would read past the input.
static inline float activated(const float *row, int64_t at, int64_t length, float alpha) {
    const float v = at >= 0 && at < length ? row[at] : 0.0f;
    return v < 0 ? v * alpha : v;
}

/// The sizes of one chunk's rows.
typedef struct Chunk {
    int64_t length;  // output samples
    int64_t anchors, u;  // anchors per phase; u-order positions with an output (anchors · d)
    int64_t v_row, r_row, y_row, m_row;  // row lengths of V_p, R_i, Y_i and M_p
    int64_t v_count, r_count;  // u positions of V and of R that are computed
    // The phases' segments: 1 in u order; d in phase order (`phased`), phase ρ's anchors at
    // ρ·v_phase + a in V, M and Y and at ρ·r_phase + a in R (whose segments hold the anchors the
    // input transform reads ahead). `step`: one anchor later in R (d in u order, 1 in phase order).
    int64_t phases, v_phase, r_phase, step;
    // V is zero from v_count to here (AVX2's transforms): v_row for DirectConv's generic
    // micro-kernels, which read whole blocks past u; the packed kernels read V only to u rounded
    // to a vector, which the transforms write whole, so for them nothing past it (a memset per
    // row and point was ~1% of the voice's time).
    int64_t v_zero;
} Chunk;

static Chunk chunk_for(const LarkWinograd *plan, int64_t d, int64_t length, int phased) {
    Chunk c = {.length = length};
    const int64_t span = plan->m * d;
    c.anchors = (length + span - 1) / span;
    if (phased) {
        const int64_t anchors = round_up(c.anchors, 8), ahead = (plan->n - 1) / plan->m;
        c.phases = d, c.v_phase = anchors, c.r_phase = round_up(anchors + ahead, 8), c.step = 1;
        c.u = c.v_count = d * anchors;
        c.m_row = round_up(c.u, 16);
        c.v_row = round_up(round_up(c.u, LARK_BLOCK_SAMPLES) + 16, 16);
        c.r_count = d * c.r_phase;
        c.r_row = round_up(c.r_count, 16);
        c.y_row = c.m_row;
        return c;
    }
    c.u = c.anchors * d;
    c.m_row = round_up(c.u, 16);
    // The GEMM reads V at [i0, i0 + a block's samples + (pieces − 1)·d) for blocks from 0 to u.
    c.v_row = round_up(round_up(c.u, LARK_BLOCK_SAMPLES) + (plan->pieces - 1) * d + 16, 16);
    c.v_count = c.u + (plan->pieces - 1) * d;
    // V at u reads R at u + d·⌊l / m⌋ for l < m + r − 1.
    c.r_count = c.v_count + (plan->n - 1) / plan->m * d;
    c.r_row = round_up(c.r_count, 16);
    c.y_row = c.m_row;
    c.phases = 1, c.v_phase = c.v_count, c.r_phase = 0, c.step = d;
    return c;
}

/// The padded input copy's length that the shuffled R rows read (32 floats past every window).
static int64_t padded_count(const LarkWinograd *plan, const Chunk *c, int64_t d) {
    return round_up((round_up(c->r_count, 16) / d + 1) * plan->m * d + plan->m * d + 32, 16);
}

/// Output samples per chunk: the chunk's rows (R, V, M, Y: 2m + 2n rows of u per channel) in
/// about 384 KB of L2 (bench/winograd: 256 and 640 KB were slower), rounded to the nearest
/// multiple of m · LARK_PACKED_SAMPLES, so that a whole chunk's u (its samples / m) fills the
/// products' register tiles (24 columns with AVX2, 48 with AVX-512) with none left over. Rounded
/// to LARK_PACKED_SAMPLES only, a residual level's chunks had u = 108 or 60 and every chunk ended
/// in a part tile (`tile_k1_v2`/`v1`: ~15% of the products' time in a profile of the voice).
static int64_t chunk_samples(const LarkWinograd *plan, int64_t channels) {
    const int64_t per_sample = (2 * plan->m + 2 * plan->n) * channels * 4 / plan->m + 1;
    const int64_t unit = plan->m * LARK_PACKED_SAMPLES;
    int64_t samples = ((384 << 10) / per_sample + unit / 2) / unit * unit;
    return samples < unit ? unit : samples > 3072 / unit * unit ? 3072 / unit * unit : samples;
}

/// Whether AVX2 runs a chunk of `chunk` samples in phase order (Chunk): where its gather and
/// finish would otherwise take gather instructions (dilations other than 1, 2 and multiples of 4,
/// whose u-order rows they read as transposes or copies), for m = 4 in one piece, and when the
/// whole chunks have whole vectors of anchors per phase. In phase order an anchor's period of m·d
/// samples is one row of a matrix whose transpose, by 4×4 blocks, is the m rows of all phases.
static int phase_order(const LarkWinograd *plan, int64_t d, int64_t chunk) {
    return plan->m == 4 && plan->pieces == 1 && d > 2 && d % 4 != 0 && plan->m * d <= LARK_WINOGRAD_MAX_PERIOD
        && chunk % (8 * plan->m * d) == 0;
}

int64_t lark_winograd_tile_samples(const LarkWinograd *plan, int64_t input_channels, int64_t output_channels) {
    return chunk_samples(plan, input_channels > output_channels ? input_channels : output_channels);
}

size_t lark_winograd_scratch_bytes(const LarkWinograd *plan, int64_t input_channels, int64_t output_channels, int64_t dilation) {
    const int64_t channels = input_channels > output_channels ? input_channels : output_channels;
    const int64_t chunk = chunk_samples(plan, channels);
    size_t bytes = 0;
    // The larger of the two orders' (the path, which picks one, is not known here).
    for (int phased = 0; phased <= phase_order(plan, dilation, chunk); phased++) {
        const Chunk c = chunk_for(plan, dilation, chunk, phased);
        const int64_t floats = input_channels * (plan->m * c.r_row + plan->n * c.v_row) + output_channels * (plan->n * c.m_row + plan->m * c.y_row) + 16;
        const int64_t ints = 48 + round_up(c.r_count, 16) + round_up(c.length + 32, 16);
        const size_t these = (size_t)(floats + ints + padded_count(plan, &c, dilation) + 64) * sizeof(float) + 256;
        if (these > bytes) bytes = these;
    }
    return bytes;
}

// MARK: - The stages, portable and AVX-512

/// R_i[c][u] = act(x[base + t(u) + i·d]) for u < r_count, zero outside the input.
static inline __attribute__((always_inline)) void gather_input_portable(
    const LarkDirectConv *conv, const LarkWinograd *plan, const Chunk *ch, const float *x, int64_t base, const int32_t *t_of_u, float *r) {
    const int64_t cin = conv->input_channels, x_row = lark_x_row(conv), d = conv->dilation, in_length = conv->input_length;
    const float alpha = conv->has_pre_alpha ? conv->pre_alpha : 1.0f;
    for (int64_t c = 0; c < cin; c++)
        for (int64_t i = 0; i < plan->m; i++) {
            float *row = r + (c * plan->m + i) * ch->r_row;
            for (int64_t u = 0; u < ch->r_count; u++) row[u] = activated(x + c * x_row, base + t_of_u[u] + i * d, in_length, alpha);
        }
}

/// out[k] = Σ_l coefficients[l] · rows[l][k] for 16 lanes k: one row of a transform (B^T or A^T)
/// applied to `count` rows of 16 values, its zero coefficients skipped.
static inline __attribute__((always_inline)) void combine16(int64_t count, const float *coefficients, const float rows[][16], float *out) {
    float acc[16] = {0};
    for (int64_t l = 0; l < count; l++) {
        const float coefficient = coefficients[l];
        if (coefficient != 0)
            for (int k = 0; k < 16; k++) acc[k] += coefficient * rows[l][k];
    }
    for (int k = 0; k < 16; k++) out[k] = acc[k];
}

/// V_p[c][u] = Σ_l B^T[p][l] · R_{l mod m}[c][u + d·⌊l / m⌋] for every point p and u < v_count,
/// zeros after: 16 positions at a time, each tap loaded once for all points. `d`: one anchor
/// later in R (the chunk's `step`); in phase order each phase's segment in turn.
static inline __attribute__((always_inline)) void transform_input(
    const LarkWinograd *plan, const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v) {
    const int64_t m = plan->m, n = plan->n;
    for (int64_t c = 0; c < cin; c++) {
        for (int64_t phase = 0; phase < ch->phases; phase++)
            for (int64_t u0 = 0; u0 < ch->v_phase; u0 += 16) {
                float tap[LARK_WINOGRAD_MAX_POINTS][16];
                for (int64_t l = 0; l < n; l++) {
                    const float *in = r + (c * m + l % m) * ch->r_row + phase * ch->r_phase + l / m * d + u0;
                    for (int k = 0; k < 16; k++) tap[l][k] = in[k];
                }
                for (int64_t p = 0; p < n; p++) combine16(n, plan->bt[p], tap, v + (p * cin + c) * ch->v_row + phase * ch->v_phase + u0);
            }
        for (int64_t p = 0; p < n; p++)
            for (int64_t u = ch->v_count; u < ch->v_row; u++) v[(p * cin + c) * ch->v_row + u] = 0;
    }
}

/// Y_i[o][u] = Σ_p A^T[i][p] · M_p[o][u], 16 positions at a time.
static inline __attribute__((always_inline)) void accumulate_output(const LarkWinograd *plan, const Chunk *ch, int64_t cout, const float *mp, float *y) {
    const int64_t m = plan->m, n = plan->n;
    for (int64_t o = 0; o < cout; o++)
        for (int64_t u0 = 0; u0 < ch->u; u0 += 16) {
            float point[LARK_WINOGRAD_MAX_POINTS][16];
            for (int64_t p = 0; p < n; p++) {
                const float *in = mp + (p * cout + o) * ch->m_row + u0;
                for (int k = 0; k < 16; k++) point[p][k] = in[k];
            }
            for (int64_t i = 0; i < m; i++) combine16(n, plan->at[i], point, y + (o * m + i) * ch->y_row + u0);
        }
}

/// Output samples [t0 + first, t0 + length) of batch item n: Y in time order, plus bias and
/// residual, post-activated (`first` > 0: what a vectorized finish left).
static inline __attribute__((always_inline)) void finish_portable(
    const LarkDirectConv *conv, const Chunk *ch, int64_t m, int64_t n, int64_t t0, const int32_t *from_t, const float *y, int64_t first) {
    const int64_t cout = conv->output_channels, y_row = lark_y_row(conv), z_row = lark_z_row(conv);
    float *out = conv->y + n * cout * y_row + t0;
    const float *z = conv->z ? conv->z + n * cout * z_row + t0 : NULL;
    for (int64_t o = 0; o < cout; o++) {
        const float bias = conv->b ? conv->b[o] : 0.0f;
        const float *row = y + o * m * ch->y_row;
        for (int64_t t = first; t < ch->length; t++) {
            float v = row[from_t[t]] + bias;
            if (z) v += z[o * z_row + t];
            if (conv->has_post_alpha && v < 0) v *= conv->post_alpha;
            out[o * y_row + t] = v;
        }
    }
}

static void transform_input_generic(const LarkWinograd *plan, const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v) {
    transform_input(plan, ch, cin, d, r, v);
}
static void accumulate_output_generic(const LarkWinograd *plan, const Chunk *ch, int64_t cout, const float *mp, float *y) {
    accumulate_output(plan, ch, cout, mp, y);
}

#if defined(__x86_64__)
#include <immintrin.h>

#include "avx2_transpose.h"
#define AVX512 __attribute__((target("avx512f")))

/// transform_input and accumulate_output for one F(m, r) with its transforms as constants
/// (winograd_tables.h), unrolled so that only their nonzero terms are computed, in registers.
AVX512 static inline __attribute__((always_inline)) void transform_input_fixed(
    const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v, const int m, const int n, const float *bt) {
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t c = 0; c < cin; c++) {
        for (int64_t u0 = 0; u0 < ch->v_count; u0 += 16) {
            __m512 tap[LARK_WINOGRAD_MAX_POINTS];
#pragma clang loop unroll(full)
            for (int l = 0; l < n; l++) tap[l] = _mm512_loadu_ps(r + (c * m + l % m) * ch->r_row + l / m * d + u0);
#pragma clang loop unroll(full)
            for (int p = 0; p < n; p++) {
                __m512 acc = zero;
#pragma clang loop unroll(full)
                for (int l = 0; l < n; l++) {
                    const float b = bt[p * n + l];
                    if (b == 1.0f) acc = _mm512_add_ps(acc, tap[l]);
                    else if (b == -1.0f) acc = _mm512_sub_ps(acc, tap[l]);
                    else if (b != 0.0f) acc = _mm512_fmadd_ps(_mm512_set1_ps(b), tap[l], acc);
                }
                _mm512_storeu_ps(v + (p * cin + c) * ch->v_row + u0, acc);
            }
        }
        for (int p = 0; p < n; p++)
            for (int64_t u = ch->v_count; u < ch->v_row; u++) v[(p * cin + c) * ch->v_row + u] = 0;
    }
}

AVX512 static inline __attribute__((always_inline)) void accumulate_output_fixed(
    const Chunk *ch, int64_t cout, const float *mp, float *y, const int m, const int n, const float *at) {
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t o = 0; o < cout; o++)
        for (int64_t u0 = 0; u0 < ch->u; u0 += 16) {
            __m512 point[LARK_WINOGRAD_MAX_POINTS];
#pragma clang loop unroll(full)
            for (int p = 0; p < n; p++) point[p] = _mm512_loadu_ps(mp + (p * cout + o) * ch->m_row + u0);
#pragma clang loop unroll(full)
            for (int i = 0; i < m; i++) {
                __m512 acc = zero;
#pragma clang loop unroll(full)
                for (int p = 0; p < n; p++) {
                    const float a = at[i * n + p];
                    if (a == 1.0f) acc = _mm512_add_ps(acc, point[p]);
                    else if (a == -1.0f) acc = _mm512_sub_ps(acc, point[p]);
                    else if (a != 0.0f) acc = _mm512_fmadd_ps(_mm512_set1_ps(a), point[p], acc);
                }
                _mm512_storeu_ps(y + (o * m + i) * ch->y_row + u0, acc);
            }
        }
}

#define FIXED(M, R, N)                                                                                                          \
    AVX512 static void input_##M##_##R(const LarkWinograd *plan, const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v) { \
        (void)plan;                                                                                                               \
        transform_input_fixed(ch, cin, d, r, v, M, N, &winograd_bt_##M##_##R[0][0]);                                             \
    }                                                                                                                             \
    AVX512 static void output_##M##_##R(const LarkWinograd *plan, const Chunk *ch, int64_t cout, const float *mp, float *y) {     \
        (void)plan;                                                                                                               \
        accumulate_output_fixed(ch, cout, mp, y, M, N, &winograd_at_##M##_##R[0][0]);                                            \
    }
LARK_WINOGRAD_SPECIALIZED(FIXED)

AVX512 static void transform_input_avx512(const LarkWinograd *plan, const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v) {
    transform_input(plan, ch, cin, d, r, v);
}
AVX512 static void accumulate_output_avx512(const LarkWinograd *plan, const Chunk *ch, int64_t cout, const float *mp, float *y) {
    accumulate_output(plan, ch, cout, mp, y);
}

/// gather_input_portable with 16-lane gathers (masked at the input's ends).
AVX512 static void gather_input_avx512(
    const LarkDirectConv *conv, const LarkWinograd *plan, const Chunk *ch, const float *x, int64_t base, const int32_t *t_of_u, float *r) {
    const int64_t cin = conv->input_channels, x_row = lark_x_row(conv), d = conv->dilation, in_length = conv->input_length;
    const __m512 alpha = _mm512_set1_ps(conv->has_pre_alpha ? conv->pre_alpha : 1.0f), zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < plan->m; i++) {
        const __m512i shift = _mm512_set1_epi32((int32_t)(base + i * d));
        const __m512i low = _mm512_set1_epi32(-1), high = _mm512_set1_epi32((int32_t)in_length);
        for (int64_t u = 0; u < ch->r_count; u += 16) {
            const __m512i at = _mm512_add_epi32(_mm512_loadu_si512(t_of_u + u), shift);
            const __mmask16 inside = _mm512_cmpgt_epi32_mask(at, low) & _mm512_cmplt_epi32_mask(at, high);
            for (int64_t c = 0; c < cin; c++) {
                __m512 v = _mm512_mask_i32gather_ps(zero, inside, at, x + c * x_row, 4);
                v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, alpha);
                _mm512_store_ps(r + (c * plan->m + i) * ch->r_row + u, v);
            }
        }
    }
}

/// finish_portable with 16-lane gathers from Y.
AVX512 static void finish_avx512(
    const LarkDirectConv *conv, const Chunk *ch, int64_t m, int64_t n, int64_t t0, const int32_t *from_t, const float *y) {
    (void)m;
    const int64_t cout = conv->output_channels, y_row = lark_y_row(conv), z_row = lark_z_row(conv);
    float *out = conv->y + n * cout * y_row + t0;
    const float *z = conv->z ? conv->z + n * cout * z_row + t0 : NULL;
    const __m512 zero = _mm512_setzero_ps(), alpha = _mm512_set1_ps(conv->post_alpha);
    for (int64_t o = 0; o < cout; o++) {
        const __m512 bias = _mm512_set1_ps(conv->b ? conv->b[o] : 0.0f);
        const float *row = y + o * m * ch->y_row;
        for (int64_t t = 0; t < ch->length; t += 16) {
            const __mmask16 lanes = ch->length - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ch->length - t)) - 1);
            const __m512i at = _mm512_maskz_loadu_epi32(lanes, from_t + t);
            __m512 v = _mm512_add_ps(_mm512_mask_i32gather_ps(zero, lanes, at, row, 4), bias);
            if (z) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, z + o * z_row + t));
            if (conv->has_post_alpha) v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, alpha);
            _mm512_mask_storeu_ps(out + o * y_row + t, lanes, v);
        }
    }
}

// MARK: AVX2 (CPUs without AVX-512): the same transforms on 8-lane vectors; the gather and the
// finish by a transpose at dilation 1 and by gather instructions elsewhere.
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __attribute__((always_inline)) __m256 combine8(const __m256 *rows, const float *coefficients, const int count) {
    __m256 acc = _mm256_setzero_ps();
#pragma clang loop unroll(full)
    for (int l = 0; l < count; l++) {
        const float b = coefficients[l];
        if (b == 1.0f) acc = _mm256_add_ps(acc, rows[l]);
        else if (b == -1.0f) acc = _mm256_sub_ps(acc, rows[l]);
        else if (b != 0.0f) acc = _mm256_fmadd_ps(_mm256_set1_ps(b), rows[l], acc);
    }
    return acc;
}

AVX2 static inline __attribute__((always_inline)) void transform_input_fixed_avx2(
    const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v, const int m, const int n, const float *bt) {
    // The chunk's sizes in locals: the compiler reloads fields of *ch after every store to V.
    const int64_t phases = ch->phases, v_phase = ch->v_phase, r_phase = ch->r_phase, r_row = ch->r_row, v_row = ch->v_row;
    for (int64_t c = 0; c < cin; c++) {
        for (int64_t phase = 0; phase < phases; phase++)
            for (int64_t u0 = 0; u0 < v_phase; u0 += 8) {
                const float *from = r + c * m * r_row + phase * r_phase + u0;
                float *to = v + c * v_row + phase * v_phase + u0;
                __m256 tap[LARK_WINOGRAD_MAX_POINTS];
#pragma clang loop unroll(full)
                for (int l = 0; l < n; l++) tap[l] = _mm256_loadu_ps(from + (l % m) * r_row + l / m * d);
#pragma clang loop unroll(full)
                for (int p = 0; p < n; p++) _mm256_storeu_ps(to + p * cin * v_row, combine8(tap, bt + p * n, n));
            }
        for (int p = 0; p < n; p++)
            for (int64_t u = ch->v_count; u < ch->v_zero; u++) v[(p * cin + c) * v_row + u] = 0;
    }
}

AVX2 static inline __attribute__((always_inline)) void accumulate_output_fixed_avx2(
    const Chunk *ch, int64_t cout, const float *mp, float *y, const int m, const int n, const float *at) {
    const int64_t u = ch->u, m_row = ch->m_row, y_row = ch->y_row;  // (as in the input transform)
    for (int64_t o = 0; o < cout; o++)
        for (int64_t u0 = 0; u0 < u; u0 += 8) {
            __m256 point[LARK_WINOGRAD_MAX_POINTS];
#pragma clang loop unroll(full)
            for (int p = 0; p < n; p++) point[p] = _mm256_loadu_ps(mp + (p * cout + o) * m_row + u0);
#pragma clang loop unroll(full)
            for (int i = 0; i < m; i++) _mm256_storeu_ps(y + (o * m + i) * y_row + u0, combine8(point, at + i * n, n));
        }
}

#define FIXED_AVX2(M, R, N)                                                                                                          \
    AVX2 static void input_avx2_##M##_##R(const LarkWinograd *plan, const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v) { \
        (void)plan;                                                                                                                    \
        transform_input_fixed_avx2(ch, cin, d, r, v, M, N, &winograd_bt_##M##_##R[0][0]);                                              \
    }                                                                                                                                  \
    AVX2 static void output_avx2_##M##_##R(const LarkWinograd *plan, const Chunk *ch, int64_t cout, const float *mp, float *y) {     \
        (void)plan;                                                                                                                    \
        accumulate_output_fixed_avx2(ch, cout, mp, y, M, N, &winograd_at_##M##_##R[0][0]);                                             \
    }
LARK_WINOGRAD_SPECIALIZED(FIXED_AVX2)

AVX2 static void transform_input_avx2(const LarkWinograd *plan, const Chunk *ch, int64_t cin, int64_t d, const float *r, float *v) {
    transform_input(plan, ch, cin, d, r, v);
}
AVX2 static void accumulate_output_avx2(const LarkWinograd *plan, const Chunk *ch, int64_t cout, const float *mp, float *y) {
    accumulate_output(plan, ch, cout, mp, y);
}

AVX2 static inline __attribute__((always_inline)) __m256 leaky(__m256 v, __m256 alpha) {
    return _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
}

/// Four vectors of four pairs of floats (a, b, c, d: pairs 0–3 of four consecutive anchors)
/// become the four vectors of pair 0, 1, 2 and 3 of the anchors in order: a 4×4 transpose of
/// 64-bit elements, its own inverse.
AVX2 static inline __attribute__((always_inline)) void transpose_pairs(__m256 *a, __m256 *b, __m256 *c, __m256 *d) {
    const __m256d ab_low = _mm256_unpacklo_pd(_mm256_castps_pd(*a), _mm256_castps_pd(*b));
    const __m256d ab_high = _mm256_unpackhi_pd(_mm256_castps_pd(*a), _mm256_castps_pd(*b));
    const __m256d cd_low = _mm256_unpacklo_pd(_mm256_castps_pd(*c), _mm256_castps_pd(*d));
    const __m256d cd_high = _mm256_unpackhi_pd(_mm256_castps_pd(*c), _mm256_castps_pd(*d));
    *a = _mm256_castpd_ps(_mm256_permute2f128_pd(ab_low, cd_low, 0x20)), *b = _mm256_castpd_ps(_mm256_permute2f128_pd(ab_high, cd_high, 0x20));
    *c = _mm256_castpd_ps(_mm256_permute2f128_pd(ab_low, cd_low, 0x31)), *d = _mm256_castpd_ps(_mm256_permute2f128_pd(ab_high, cd_high, 0x31));
}

/// to[k] = act(from[k]) for k < count (a multiple of 4): pieces of 8 and 4 floats, `alpha` the
/// activation's slope (1: none).
AVX2 static inline __attribute__((always_inline)) void copy_pieces(const float *from, float *to, int64_t count, __m256 alpha) {
    int64_t k = 0;
    for (; k + 8 <= count; k += 8) _mm256_storeu_ps(to + k, leaky(_mm256_loadu_ps(from + k), alpha));
    if (k < count) {
        const __m128 v = _mm_loadu_ps(from + k);
        _mm_storeu_ps(to + k, _mm_blendv_ps(v, _mm_mul_ps(v, _mm256_castps256_ps128(alpha)), _mm_cmplt_ps(v, _mm_setzero_ps())));
    }
}

/// gather_input_portable for AVX2. With m = 4 at dilation 1 (the flow's convolutions: R_i[u] =
/// s[4u + i], a four-way de-interleave) 32 samples become 8 of each row by a transpose of 4×4
/// blocks and a lane permute; at dilation 2 (the levels' k3/k5 d2: R_i[u] = s[4u + 2i] for even
/// u, pairs of samples) by a transpose of 4×4 pairs; at dilations that are multiples of 4 (each
/// anchor's d samples of a row contiguous) by copies; elsewhere 8-lane gathers. Measured alone
/// (32 channels, ~110,000 elements): the portable loop 1.2 ns an element on a Zen 3 (its test,
/// load and store per element), the gathers 0.86 ns, the transpose ~0.3 ns.
AVX2 static void gather_input_avx2(
    const LarkDirectConv *conv, const LarkWinograd *plan, const Chunk *ch, const float *x, int64_t base, const int32_t *t_of_u, float *r) {
    const int64_t cin = conv->input_channels, x_row = lark_x_row(conv), d = conv->dilation, in_length = conv->input_length, m = plan->m;
    const float pre = conv->has_pre_alpha ? conv->pre_alpha : 1.0f;
    const int64_t ch_r_row = ch->r_row, ch_r_count = ch->r_count;  // locals: reloaded after every store otherwise
    const __m256 alpha = _mm256_set1_ps(pre), zero = _mm256_setzero_ps();
    if (d <= 2 && m == 4) {
        // Both read 32 samples from 4u on: anchors u..u+7 at d = 1, anchors u/2..u/2+3 at d = 2.
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // lane l holds anchors l, l + 4 after the transpose
        for (int64_t c = 0; c < cin; c++) {
            const float *from = x + c * x_row;
            float *rows = r + c * 4 * ch_r_row;
            for (int64_t u = 0; u < ch_r_count; u += 8) {
                const int64_t t = base + 4 * u;
                if (t < 0 || t + 32 > in_length) {
                    for (int64_t i = 0; i < 4; i++)
                        for (int64_t k = 0; k < 8; k++) {
                            const int64_t at = d == 1 ? t + 4 * k + i : t + 8 * (k / 2) + 2 * i + k % 2;
                            rows[i * ch_r_row + u + k] = activated(from, at, in_length, pre);
                        }
                    continue;
                }
                __m256 a = _mm256_loadu_ps(from + t), b = _mm256_loadu_ps(from + t + 8), c2 = _mm256_loadu_ps(from + t + 16),
                       d2 = _mm256_loadu_ps(from + t + 24);
                if (d == 1) {
                    transpose_lanes(&a, &b, &c2, &d2);
                    a = _mm256_permutevar8x32_ps(a, order), b = _mm256_permutevar8x32_ps(b, order);
                    c2 = _mm256_permutevar8x32_ps(c2, order), d2 = _mm256_permutevar8x32_ps(d2, order);
                } else {
                    transpose_pairs(&a, &b, &c2, &d2);
                }
                _mm256_storeu_ps(rows + u, leaky(a, alpha));
                _mm256_storeu_ps(rows + ch_r_row + u, leaky(b, alpha));
                _mm256_storeu_ps(rows + 2 * ch_r_row + u, leaky(c2, alpha));
                _mm256_storeu_ps(rows + 3 * ch_r_row + u, leaky(d2, alpha));
            }
        }
        return;
    }
    if (d % 4 == 0) {
        // Each anchor's d samples of a row are contiguous in the input: copied in pieces of 8 and
        // 4 where the anchor's block lies inside the input and below r_count (at d = 6, pieces of
        // 4 and 2 measured slower than the gathers).
        const int64_t whole = ch_r_count / d, vectors = round_up(ch_r_count, 8);
        for (int64_t c = 0; c < cin; c++) {
            const float *from = x + c * x_row;
            float *rows = r + c * m * ch_r_row;
            for (int64_t a = 0; a < whole; a++) {
                const int64_t t = base + a * m * d;
                const int inside = t >= 0 && t + m * d <= in_length;
                for (int64_t i = 0; i < m; i++) {
                    float *to = rows + i * ch_r_row + a * d;
                    if (inside) copy_pieces(from + t + i * d, to, d, alpha);
                    else
                        for (int64_t k = 0; k < d; k++) to[k] = activated(from, t + i * d + k, in_length, pre);
                }
            }
            for (int64_t i = 0; i < m; i++)
                for (int64_t u = whole * d; u < vectors; u++) rows[i * ch_r_row + u] = activated(from, base + t_of_u[u] + i * d, in_length, pre);
        }
        return;
    }
    const __m256i low = _mm256_set1_epi32(-1), high = _mm256_set1_epi32((int32_t)in_length);
    for (int64_t c = 0; c < cin; c++)
        for (int64_t i = 0; i < m; i++) {
            const __m256i shift = _mm256_set1_epi32((int32_t)(base + i * d));
            const float *from = x + c * x_row;
            float *row = r + (c * m + i) * ch_r_row;
            for (int64_t u = 0; u < ch_r_count; u += 8) {
                const __m256i at = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(t_of_u + u)), shift);
                const __m256 lanes = _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(at, low), _mm256_cmpgt_epi32(high, at)));
                const __m256 v = _mm256_movemask_ps(lanes) == 0xFF ? _mm256_i32gather_ps(from, at, 4) : _mm256_mask_i32gather_ps(zero, from, at, lanes, 4);
                _mm256_storeu_ps(row + u, leaky(v, alpha));
            }
        }
}

/// to[k] = post(from[k] + bias (+ residual[k])) for k < count (a multiple of 4), in pieces of 8 and 4.
AVX2 static inline __attribute__((always_inline)) void finish_pieces(
    const float *from, float *to, const float *residual, int64_t count, __m256 bias, int has_post, __m256 post) {
    int64_t k = 0;
    for (; k + 8 <= count; k += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(from + k), bias);
        if (residual) v = _mm256_add_ps(v, _mm256_loadu_ps(residual + k));
        _mm256_storeu_ps(to + k, has_post ? leaky(v, post) : v);
    }
    if (k < count) {
        __m128 v = _mm_add_ps(_mm_loadu_ps(from + k), _mm256_castps256_ps128(bias));
        if (residual) v = _mm_add_ps(v, _mm_loadu_ps(residual + k));
        const __m128 slope = _mm256_castps256_ps128(post);
        _mm_storeu_ps(to + k, has_post ? _mm_blendv_ps(v, _mm_mul_ps(v, slope), _mm_cmplt_ps(v, _mm_setzero_ps())) : v);
    }
}

/// finish_portable for AVX2: with m = 4 at dilation 1 or 2, 8 positions of the four Y rows become
/// 32 samples by the inverse of gather_input_avx2's transpose; at dilations that are multiples of
/// 4, copies of each anchor's d samples per row; elsewhere 8-lane gathers; the
/// chunk's last samples (past the whole vectors) by finish_portable.
AVX2 static void finish_avx2(const LarkDirectConv *conv, const Chunk *ch, int64_t m, int64_t n, int64_t t0, const int32_t *from_t, const float *y) {
    const int64_t cout = conv->output_channels, y_row = lark_y_row(conv), z_row = lark_z_row(conv), d = conv->dilation;
    const int transposed = d <= 2 && m == 4, pieces = !transposed && d % 4 == 0;
    const int64_t step = pieces ? m * d : transposed ? 32 : 8, whole = ch->length / step * step;  // samples per iteration
    float *out = conv->y + n * cout * y_row + t0;
    const float *z = conv->z ? conv->z + n * cout * z_row + t0 : NULL;
    const __m256 post = _mm256_set1_ps(conv->has_post_alpha ? conv->post_alpha : 1.0f);
    const int has_post = conv->has_post_alpha;  // once: the stores below may alias *conv for the compiler
    const int64_t ch_y_row = ch->y_row;  // locals: reloaded after every store otherwise
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);  // anchors l and l + 4 into lane l
    for (int64_t o = 0; o < cout; o++) {
        const __m256 biases = _mm256_set1_ps(conv->b ? conv->b[o] : 0.0f);
        const float *row = y + o * m * ch_y_row, *residual = z ? z + o * z_row : NULL;
        float *to = out + o * y_row;
        if (pieces) {
            // Anchor a's samples [a·m·d + i·d, + d) are row i's [a·d, + d).
            for (int64_t t = 0, a = 0; t < whole; t += m * d, a += d)
                for (int64_t i = 0; i < m; i++)
                    finish_pieces(row + i * ch_y_row + a, to + t + i * d, residual ? residual + t + i * d : NULL, d, biases, has_post, post);
        } else if (transposed) {
            for (int64_t t = 0; t < whole; t += 32) {
                const int64_t a = t / 4;
                __m256 v[4] = {_mm256_loadu_ps(row + a), _mm256_loadu_ps(row + ch_y_row + a), _mm256_loadu_ps(row + 2 * ch_y_row + a),
                               _mm256_loadu_ps(row + 3 * ch_y_row + a)};
                if (d == 1) {
                    for (int k = 0; k < 4; k++) v[k] = _mm256_permutevar8x32_ps(v[k], order);
                    transpose_lanes(&v[0], &v[1], &v[2], &v[3]);
                } else {
                    transpose_pairs(&v[0], &v[1], &v[2], &v[3]);
                }
                for (int k = 0; k < 4; k++) {
                    __m256 value = _mm256_add_ps(v[k], biases);
                    if (residual) value = _mm256_add_ps(value, _mm256_loadu_ps(residual + t + 8 * k));
                    _mm256_storeu_ps(to + t + 8 * k, has_post ? leaky(value, post) : value);
                }
            }
        } else {
            for (int64_t t = 0; t < whole; t += 8) {
                __m256 value = _mm256_add_ps(_mm256_i32gather_ps(row, _mm256_loadu_si256((const __m256i *)(from_t + t)), 4), biases);
                if (residual) value = _mm256_add_ps(value, _mm256_loadu_ps(residual + t));
                _mm256_storeu_ps(to + t, has_post ? leaky(value, post) : value);
            }
        }
    }
    finish_portable(conv, ch, m, n, t0, from_t, y, whole);
}

/// Where column k of an anchor's period (k = i·d + ρ: row i, phase ρ) lies in phase order, from
/// the start of the first row: row k / d's phase k mod d.
static inline __attribute__((always_inline)) void phase_offsets(int64_t *offsets, int64_t period, int64_t d, int64_t row, int64_t phase) {
    for (int64_t k = 0; k < period; k++) offsets[k] = k / d * row + k % d * phase;
}

/// gather_input_portable in phase order (phase_order, Chunk): R_i[ρ·r_phase + a] = act(s[base +
/// a·m·d + i·d + ρ]). Anchor a's period of m·d samples is row a of a matrix whose column k is
/// phase ρ's row i at a: columns k..k+3 of eight periods, transposed as a 4×4 block per 128-bit
/// lane, are those four rows at eight anchors (in u order at these dilations they were 8-lane
/// gathers: ~6% of the voice's time on a Zen 3).
AVX2 static void gather_phased_avx2(const LarkDirectConv *conv, const LarkWinograd *plan, const Chunk *ch, const float *x, int64_t base, float *r) {
    const int64_t cin = conv->input_channels, x_row = lark_x_row(conv), d = conv->dilation, in_length = conv->input_length;
    const int64_t period = plan->m * d;
    const float pre = conv->has_pre_alpha ? conv->pre_alpha : 1.0f;
    const __m256 alpha = _mm256_set1_ps(pre);
    int64_t offsets[LARK_WINOGRAD_MAX_PERIOD];
    phase_offsets(offsets, period, d, ch->r_row, ch->r_phase);
    for (int64_t c = 0; c < cin; c++) {
        const float *from = x + c * x_row;
        float *rows = r + c * plan->m * ch->r_row;
        for (int64_t a = 0; a < ch->r_phase; a += 8) {
            const int64_t t = base + a * period;
            if (t < 0 || t + 8 * period > in_length) {
                for (int64_t k = 0; k < period; k++)
                    for (int64_t j = 0; j < 8; j++) rows[offsets[k] + a + j] = activated(from, t + j * period + k, in_length, pre);
                continue;
            }
            for (int64_t k = 0; k < period; k += 4) {
                const float *s = from + t + k;
                __m256 v[4];
                for (int j = 0; j < 4; j++) v[j] = _mm256_loadu2_m128(s + (j + 4) * period, s + j * period);
                transpose_lanes(&v[0], &v[1], &v[2], &v[3]);
                for (int q = 0; q < 4; q++) _mm256_storeu_ps(rows + offsets[k + q] + a, leaky(v[q], alpha));
            }
        }
    }
}

/// finish_portable in phase order: eight anchors' values at columns k..k+3 of their periods,
/// transposed as in gather_phased_avx2, are those samples of the eight periods (lane 0 periods
/// a..a+3, lane 1 a+4..a+7); the samples past the last whole eight periods by finish_portable.
AVX2 static void finish_phased_avx2(const LarkDirectConv *conv, const Chunk *ch, int64_t m, int64_t n, int64_t t0, const int32_t *from_t, const float *y) {
    const int64_t cout = conv->output_channels, y_row = lark_y_row(conv), z_row = lark_z_row(conv), d = conv->dilation;
    const int64_t period = m * d, whole = ch->length / (8 * period) * (8 * period);
    float *out = conv->y + n * cout * y_row + t0;
    const float *z = conv->z ? conv->z + n * cout * z_row + t0 : NULL;
    const __m256 post = _mm256_set1_ps(conv->has_post_alpha ? conv->post_alpha : 1.0f);
    const int has_post = conv->has_post_alpha;  // once: the stores below may alias *conv for the compiler
    int64_t offsets[LARK_WINOGRAD_MAX_PERIOD];
    phase_offsets(offsets, period, d, ch->y_row, ch->v_phase);
    for (int64_t o = 0; o < cout; o++) {
        const __m256 bias = _mm256_set1_ps(conv->b ? conv->b[o] : 0.0f);
        const float *row = y + o * m * ch->y_row, *residual = z ? z + o * z_row : NULL;
        float *to = out + o * y_row;
        for (int64_t t = 0, a = 0; t < whole; t += 8 * period, a += 8)
            for (int64_t k = 0; k < period; k += 4) {
                __m256 v[4];
                for (int q = 0; q < 4; q++) v[q] = _mm256_loadu_ps(row + offsets[k + q] + a);
                transpose_lanes(&v[0], &v[1], &v[2], &v[3]);
                for (int j = 0; j < 4; j++) {
                    const int64_t low = t + j * period + k, high = low + 4 * period;
                    __m256 value = _mm256_add_ps(v[j], bias);
                    if (residual) value = _mm256_add_ps(value, _mm256_loadu2_m128(residual + high, residual + low));
                    if (has_post) value = leaky(value, post);
                    _mm256_storeu2_m128(to + high, to + low, value);
                }
            }
    }
    finish_portable(conv, ch, m, n, t0, from_t, y, whole);
}

// Gathers without gather instructions (which take ~3 cycles per element on this class of CPU,
// as much as the products themselves at 32 channels): a destination vector of 16 lanes takes
// its sources from a few 32-float windows, each one vpermt2ps and a masked blend. The
// index maps here are periodic (the anchors repeat every m·d samples), so one table of
// `patterns` entries serves a whole chunk: destination vector q uses entry q mod patterns, its
// windows `advance` floats further per period. (The same with AVX2's 8-lane vpermps and blends
// from 8-float windows measured slower than its gathers on a Zen 3, at dilations 3 and 6.)
#define MAX_PARTS 8
#define MAX_PATTERNS 16
typedef struct Shuffle {
    int64_t patterns, advance;
    int parts[MAX_PATTERNS];
    int64_t from[MAX_PATTERNS][MAX_PARTS];  // a window's first source index, in period 0
    __mmask16 lanes[MAX_PATTERNS][MAX_PARTS];
    int32_t index[MAX_PATTERNS][MAX_PARTS][16];
} Shuffle;

static int64_t gcd(int64_t a, int64_t b) { return b ? gcd(b, a % b) : a; }

/// The table for destination j ↦ source(j) (with `source(j + 16·patterns) = source(j) + advance`),
/// or 0 when the windows do not fit it.
static int shuffle_for(Shuffle *s, int64_t period, int64_t (*source)(int64_t j, const void *), const void *context) {
    s->patterns = period * 16 / gcd(16, period) / 16;  // lcm(16, period) / 16 vectors
    if (s->patterns > MAX_PATTERNS) return 0;
    s->advance = source(16 * s->patterns, context) - source(0, context);
    for (int64_t q = 0; q < s->patterns; q++) {
        int64_t at[16];
        int done[16] = {0};
        for (int lane = 0; lane < 16; lane++) at[lane] = source(16 * q + lane, context);
        int parts = 0;
        for (;;) {
            int64_t low = -1;
            for (int lane = 0; lane < 16; lane++)
                if (!done[lane] && (low < 0 || at[lane] < low)) low = at[lane];
            if (low < 0) break;
            if (parts == MAX_PARTS) return 0;
            s->from[q][parts] = low;
            __mmask16 lanes = 0;
            for (int lane = 0; lane < 16; lane++) {
                s->index[q][parts][lane] = 0;
                if (!done[lane] && at[lane] >= low && at[lane] < low + 32) {
                    lanes |= (__mmask16)(1u << lane), done[lane] = 1;
                    s->index[q][parts][lane] = (int32_t)(at[lane] - low);
                }
            }
            s->lanes[q][parts++] = lanes;
        }
        s->parts[q] = parts;
    }
    return 1;
}

/// Destination vector q = pattern + k·patterns of `table`, from `at` = base + k·advance (readable
/// 32 floats past every window). The callers step `pattern` and `at` (a division per vector
/// would cost more than the shuffle).
AVX512 static inline __m512 shuffled(const Shuffle *table, const float *at, int64_t pattern) {
    __m512 v = _mm512_setzero_ps();
    for (int part = 0; part < table->parts[pattern]; part++) {
        const float *window = at + table->from[pattern][part];
        const __m512 w = _mm512_permutex2var_ps(_mm512_loadu_ps(window), _mm512_loadu_si512(table->index[pattern][part]), _mm512_loadu_ps(window + 16));
        v = _mm512_mask_mov_ps(v, table->lanes[pattern][part], w);
    }
    return v;
}

typedef struct Layout {
    int64_t m, d, y_row;
} Layout;

static int64_t time_of_u(int64_t u, const void *context) {
    const Layout *l = context;
    return u / l->d * l->m * l->d + u % l->d;
}

static int64_t y_of_time(int64_t t, const void *context) {
    const Layout *l = context;
    const int64_t span = l->m * l->d, within = t % span;
    return within / l->d * l->y_row + t / span * l->d + within % l->d;
}

/// The chunk's input, padded and activated, into `s` (s[t] = act(x[base + t]), zero outside the
/// input) for t < s_count, then R_i[c][u] = s[t(u) + i·d] by `table`.
AVX512 static void shuffle_input_avx512(const LarkDirectConv *conv, const LarkWinograd *plan, const Chunk *ch, const float *x, int64_t base,
                                        const Shuffle *table, int64_t s_count, float *s, float *r) {
    const int64_t cin = conv->input_channels, x_row = lark_x_row(conv), d = conv->dilation, in_length = conv->input_length;
    const __m512 alpha = _mm512_set1_ps(conv->has_pre_alpha ? conv->pre_alpha : 1.0f), zero = _mm512_setzero_ps();
    for (int64_t c = 0; c < cin; c++) {
        const float *from = x + c * x_row;
        for (int64_t i = 0; i < s_count; i += 16) {
            const int64_t t = base + i;
            __m512 v;
            if (t >= 0 && t + 16 <= in_length) {
                // The next channel's row at the same place: a row of a chunk is only a few dozen
                // lines, too short a stream for the hardware prefetcher to pick up in time.
                if (c + 1 < cin) __builtin_prefetch(from + x_row + t + 16, 0, 3);
                v = _mm512_loadu_ps(from + t);
            } else {
                const __mmask16 inside = lark_inside_lanes(t, in_length);
                v = _mm512_maskz_loadu_ps(inside, from + t);
            }
            v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, alpha);
            _mm512_store_ps(s + i, v);
        }
        for (int64_t i = 0; i < plan->m; i++) {
            float *row = r + (c * plan->m + i) * ch->r_row;
            const float *at = s + i * d;
            for (int64_t q = 0, pattern = 0; q * 16 < ch->r_count; q++) {
                _mm512_store_ps(row + 16 * q, shuffled(table, at, pattern));
                if (++pattern == table->patterns) pattern = 0, at += table->advance;
            }
        }
    }
}

/// finish_avx512 with `table` (time ↦ Y position) instead of gathers.
AVX512 static void shuffle_finish_avx512(const LarkDirectConv *conv, const Chunk *ch, int64_t m, int64_t n, int64_t t0, const Shuffle *table,
                                         const float *y) {
    const int64_t cout = conv->output_channels, y_row = lark_y_row(conv), z_row = lark_z_row(conv);
    float *out = conv->y + n * cout * y_row + t0;
    const float *z = conv->z ? conv->z + n * cout * z_row + t0 : NULL;
    const __m512 zero = _mm512_setzero_ps(), alpha = _mm512_set1_ps(conv->post_alpha);
    for (int64_t o = 0; o < cout; o++) {
        const __m512 bias = _mm512_set1_ps(conv->b ? conv->b[o] : 0.0f);
        const float *row = y + o * m * ch->y_row;
        const float *at = row;
        for (int64_t t = 0, pattern = 0; t < ch->length; t += 16) {
            const __mmask16 lanes = ch->length - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ch->length - t)) - 1);
            __m512 v = _mm512_add_ps(shuffled(table, at, pattern), bias);
            if (++pattern == table->patterns) pattern = 0, at += table->advance;
            // The next channel's Z and Y at the same place, as the input's rows above.
            if (o + 1 < cout) {
                if (z) __builtin_prefetch(z + (o + 1) * z_row + t + 16, 0, 3);
                __builtin_prefetch(out + (o + 1) * y_row + t + 16, 1, 3);
            }
            if (z) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, z + o * z_row + t));
            if (conv->has_post_alpha) v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, alpha);
            _mm512_mask_storeu_ps(out + o * y_row + t, lanes, v);
        }
    }
}
#endif

static void gather_input_generic(
    const LarkDirectConv *conv, const LarkWinograd *plan, const Chunk *ch, const float *x, int64_t base, const int32_t *t_of_u, float *r) {
    gather_input_portable(conv, plan, ch, x, base, t_of_u, r);
}
static void finish_generic(const LarkDirectConv *conv, const Chunk *ch, int64_t m, int64_t n, int64_t t0, const int32_t *from_t, const float *y) {
    finish_portable(conv, ch, m, n, t0, from_t, y, 0);
}

/// M_p = the dilated convolution of V_p with U_p (`pieces` taps at dilation d) on DirectConv's
/// generic micro-kernels, output channels [first, cout).
static void product_generic(const LarkDirectConv *conv, const LarkWinograd *plan, const Chunk *ch, const float *u, const float *v, int64_t first,
                            float *mp) {
    const int64_t cin = conv->input_channels, cout = conv->output_channels, pieces = plan->pieces, d = conv->dilation;
    const int64_t w_channel = cin * pieces;
    float out[LARK_BLOCK_CHANNELS * LARK_BLOCK_SAMPLES] __attribute__((aligned(64)));
    for (int64_t o0 = first; o0 < cout; o0 += LARK_BLOCK_CHANNELS) {
        const int64_t channels = cout - o0 < LARK_BLOCK_CHANNELS ? cout - o0 : LARK_BLOCK_CHANNELS;
        for (int64_t i0 = 0; i0 < ch->u; i0 += LARK_BLOCK_SAMPLES) {
            if (channels == LARK_BLOCK_CHANNELS) {
                conv->blocks.four(v + i0, ch->v_row, u + o0 * w_channel, w_channel, cin, pieces, d, out);
            } else {
                for (int64_t j = 0; j < channels; j++)
                    conv->blocks.one(v + i0, ch->v_row, u + (o0 + j) * w_channel, w_channel, cin, pieces, d, out + j * LARK_BLOCK_SAMPLES);
            }
            const int64_t count = ch->u - i0 < LARK_BLOCK_SAMPLES ? ch->u - i0 : LARK_BLOCK_SAMPLES;
            for (int64_t j = 0; j < channels; j++) memcpy(mp + (o0 + j) * ch->m_row + i0, out + j * LARK_BLOCK_SAMPLES, (size_t)count * sizeof(float));
        }
    }
}


int lark_winograd_conv(const LarkDirectConv *conv, const LarkWinograd *plan, const float *weights, int fp32_packed) {
    const int64_t cin = conv->input_channels, cout = conv->output_channels, d = conv->dilation, m = plan->m;
    const int64_t channels = cin > cout ? cin : cout;
    // The packed ISA: the micro-kernels' (a forced path runs its own), where the CPU has one.
    const int isa = fp32_packed && lark_packed_available() ? lark_packed_isa(conv) : LARK_PACKED_NONE;
    fp32_packed = isa != LARK_PACKED_NONE;
    const WeightLayout weights_at = weight_layout(plan, cout, cin, fp32_packed);
    const int64_t packed_channels = fp32_packed ? cout / LARK_PACKED_CHANNELS * LARK_PACKED_CHANNELS : 0;
    const size_t bytes = lark_winograd_scratch_bytes(plan, cin, cout, d);
    float *scratch = lark_take_scratch(conv, bytes);
    if (!scratch) return -1;
    const int64_t chunk = chunk_samples(plan, channels);
    const int phased = isa == LARK_PACKED_AVX2 && phase_order(plan, d, chunk);
    const Chunk full = chunk_for(plan, d, chunk, phased);
    float *r = scratch, *v = r + cin * m * full.r_row + 16, *mp = v + plan->n * cin * full.v_row, *y = mp + plan->n * cout * full.m_row;
    int32_t *t_of_u = (int32_t *)(y + cout * m * full.y_row + 48), *from_t = t_of_u + round_up(full.r_count, 16);
    // Where u lies in time, and where time t lies in the Y rows (row i·y_row + u), within a chunk.
    const int64_t span = m * d;
    if (!phased)  // (phase order's gather computes its positions)
        for (int64_t u = 0; u < round_up(full.r_count, 16); u++) t_of_u[u] = (int32_t)(u / d * span + u % d);
    typedef void (*Gather)(const LarkDirectConv *, const LarkWinograd *, const Chunk *, const float *, int64_t, const int32_t *, float *);
    typedef void (*Input)(const LarkWinograd *, const Chunk *, int64_t, int64_t, const float *, float *);
    typedef void (*Output)(const LarkWinograd *, const Chunk *, int64_t, const float *, float *);
    typedef void (*Finish)(const LarkDirectConv *, const Chunk *, int64_t, int64_t, int64_t, const int32_t *, const float *);
    Gather gather = gather_input_generic;
    Input input = transform_input_generic;
    Output output = accumulate_output_generic;
    Finish finish = finish_generic;
#if defined(__x86_64__)
    if (isa == LARK_PACKED_AVX512) {
        gather = gather_input_avx512, input = transform_input_avx512, output = accumulate_output_avx512, finish = finish_avx512;
#define CHOOSE(M, R, N) \
        if (m == M && plan->r == R) input = input_##M##_##R, output = output_##M##_##R;
        LARK_WINOGRAD_SPECIALIZED(CHOOSE)
#undef CHOOSE
    } else if (fp32_packed) {
        gather = gather_input_avx2, input = transform_input_avx2, output = accumulate_output_avx2, finish = finish_avx2;
#define CHOOSE(M, R, N) \
        if (m == M && plan->r == R) input = input_avx2_##M##_##R, output = output_avx2_##M##_##R;
        LARK_WINOGRAD_SPECIALIZED(CHOOSE)
#undef CHOOSE
    }
#endif
#if defined(__x86_64__)
    // The shuffles' tables, where the index maps fit them.
    Shuffle in_table, out_table;
    const Layout layout = {.m = m, .d = d, .y_row = full.y_row};
    const int shuffles = isa == LARK_PACKED_AVX512 && shuffle_for(&in_table, d, time_of_u, &layout) && shuffle_for(&out_table, m * d, y_of_time, &layout);
    float *padded = (float *)(from_t + round_up(full.length + 32, 16));
    const int64_t padded_floats = padded_count(plan, &full, d);
#endif
    int64_t from_t_length = -1;  // the chunk length from_t was built for
    for (int64_t n = 0; n < conv->batch; n++) {
        const float *x = conv->x + n * cin * lark_x_row(conv);
        for (int64_t t0 = 0; t0 < conv->output_length; t0 += chunk) {
            const int64_t length = conv->output_length - t0 < chunk ? conv->output_length - t0 : chunk;
            const Chunk ch = length == chunk ? full : chunk_for(plan, d, length, phased);
            Chunk rows = ch;  // this chunk's counts in the full chunk's row lengths
            rows.r_row = full.r_row, rows.v_row = full.v_row, rows.m_row = full.m_row, rows.y_row = full.y_row;
            rows.v_zero = packed_channels == cout && plan->pieces == 1 ? rows.v_count : rows.v_row;
            // The table depends on the chunk's length alone: built for the first chunk, again
            // only for a shorter last one (per chunk it was ~0.6% of a voice's time).
#if defined(__x86_64__)
            if (!shuffles && length != from_t_length)
#else
            if (length != from_t_length)
#endif
                for (int64_t t = 0, a = 0, i = 0, rho = 0; t < length; t++) {  // t = a·span + i·d + rho
                    from_t[t] = (int32_t)(i * full.y_row + (phased ? rho * ch.v_phase + a : a * d + rho));
                    if (++rho == d) {
                        rho = 0;
                        if (++i == m) i = 0, a++;
                    }
                }
            from_t_length = length;
#if defined(__x86_64__)
            if (shuffles) shuffle_input_avx512(conv, plan, &rows, x, t0 - conv->pad_begin, &in_table, padded_floats, padded, r);
            else if (phased) gather_phased_avx2(conv, plan, &rows, x, t0 - conv->pad_begin, r);
            else
#endif
            gather(conv, plan, &rows, x, t0 - conv->pad_begin, t_of_u, r);
            input(plan, &rows, cin, rows.step, r, v);
            for (int64_t p = 0; p < plan->n; p++) {
                const float *vp = v + p * cin * full.v_row;
                float *mpp = mp + p * cout * full.m_row;
                if (packed_channels)
                    lark_packed_rows(isa, vp, rows.v_row, weights + p * weights_at.packed_per_point, cin,
                                     packed_channels / LARK_PACKED_CHANNELS, plan->pieces, d, rows.u, mpp, rows.m_row);
                if (packed_channels < cout) product_generic(conv, plan, &rows, weights + weights_at.plain_at + p * weights_at.per_point, vp, packed_channels, mpp);
            }
            output(plan, &rows, cout, mp, y);
#if defined(__x86_64__)
            if (shuffles) shuffle_finish_avx512(conv, &rows, m, n, t0, &out_table, y);
            else if (phased) finish_phased_avx2(conv, &rows, m, n, t0, from_t, y);
            else
#endif
            finish(conv, &rows, m, n, t0, from_t, y);
        }
    }
    lark_release_scratch(conv, scratch);
    return 0;
}
