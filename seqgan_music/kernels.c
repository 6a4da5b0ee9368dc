/* Fused CPU kernels for the rollout hot loops; built and loaded by seqgan_music/native.py.
 *
 * Each function replaces a chain of PyTorch elementwise passes by one pass per row, so a row's
 * data stays in L1 while it is worked on. Matrix products stay in PyTorch (MKL). Rows are split
 * over OpenMP threads (at load time this binds to the OpenMP runtime PyTorch already loaded).
 * All arrays are float32 / int64 / int32, row-major and contiguous unless a stride is given.
 */
#include <stdint.h>

typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(32), aligned(4)));

/* exp(x) to 4 ulp (2.2e-7 relative) for x in [-87, 88] (clamped outside): Cody-Waite reduction
 * by ln 2 and a degree-5 minimax polynomial on [-ln 2 / 2, ln 2 / 2] (relative error 7.5e-8).
 * Written so that loops vectorize. */
static inline float exp_approx(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 8.2976548e-3f;
    p = p * r + 4.1915383e-2f;
    p = p * r + 1.6667575e-1f;
    p = p * r + 4.9998894e-1f;
    p = p * r + 9.9999970e-1f;
    p = p * r + 1.0000001f;
    union { int32_t i; float f; } scale = { .i = ((int32_t)n + 127) << 23 };
    return p * scale.f;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

static inline v8 vmax(v8 a, v8 b) {
    v8i a_wins = a > b;
    return (v8)(((v8i)a & a_wins) | ((v8i)b & ~a_wins));
}

static inline float hsum8(v8 s) { return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])); }

enum { SAMPLE_BLOCK = 16 }; /* two vectors of 8 */

/* Draw one token from softmax(logits[0..V)) by inverse CDF with the uniform draw u in [0, 1):
 * the first v whose running sum of exp(logit - max) reaches u * total. Works on a copy padded
 * to whole blocks of 16 (so every loop is full vectors; padding adds exp(-87) ~ 1e-38, below
 * float resolution of the total): the max in vector registers, exp in one vectorized loop, one
 * sum per block, then the search over block sums and inside the block. */
static int64_t sample_row(const float *restrict logits, int64_t V, float u) {
    int64_t nblocks = (V + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK, padded = nblocks * SAMPLE_BLOCK;
    float probs[padded], sums[nblocks];
    for (int64_t v = 0; v < V; v++) probs[v] = logits[v];
    for (int64_t v = V; v < padded; v++) probs[v] = -__builtin_inff();
    v8 top = *(const v8 *)probs;
    for (int64_t v = 8; v < padded; v += 8) top = vmax(top, *(const v8 *)(probs + v));
    float m = top[0];
    for (int q = 1; q < 8; q++) m = top[q] > m ? top[q] : m;
    for (int64_t v = 0; v < padded; v++) probs[v] = exp_approx(probs[v] - m);
    float total = 0.0f;
    for (int64_t b = 0; b < nblocks; b++) {
        sums[b] = hsum8(*(const v8 *)(probs + b * SAMPLE_BLOCK) + *(const v8 *)(probs + b * SAMPLE_BLOCK + 8));
        total += sums[b];
    }
    float target = u * total, run = 0.0f;
    int64_t b = 0;
    for (; b < nblocks - 1 && run + sums[b] < target; b++) run += sums[b];
    int64_t end = (b + 1) * SAMPLE_BLOCK < V ? (b + 1) * SAMPLE_BLOCK : V;
    for (int64_t v = b * SAMPLE_BLOCK; v < end; v++) {
        run += probs[v];
        if (run >= target) return v;
    }
    return end - 1;
}

/* One LSTM step of one row: gates (4H, layout i, f, o, 2g of Generator.step_tables) are the
 * recurrent part plus the token's table row; h and c (H) are updated in place. gates is
 * overwritten. tanh(x) = 2 sigmoid(2x) - 1. */
static void lstm_row(float *restrict gates, const float *restrict token_row, float *restrict h, float *restrict c,
                     int64_t H) {
    for (int64_t j = 0; j < 4 * H; j++) gates[j] = sigmoid(gates[j] + token_row[j]);
    for (int64_t j = 0; j < H; j++) {
        float cell = gates[H + j] * c[j] + gates[j] * (2.0f * gates[3 * H + j] - 1.0f);
        c[j] = cell;
        h[j] = gates[2 * H + j] * (2.0f * sigmoid(2.0f * cell) - 1.0f);
    }
}

/* One rollout step for R rows. hw (R, ld): columns [0, V) the logits and, if advance, [V, V + 4H)
 * the recurrent gates h @ W_hh (both from one matmul; the gates are overwritten). u (R) uniform
 * draws. The drawn token of row r goes to tokens[r * token_stride]; if advance, the row's LSTM
 * state h, c (R, H) moves on with table (V, 4H) row of that token (input projection and biases). */
void rollout_step(float *hw, int64_t ld, const float *table, int64_t V, int64_t H, float *h, float *c,
                  const float *u, int64_t *tokens, int64_t token_stride, int64_t R, int advance) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        int64_t k = sample_row(hw + r * ld, V, u[r]);
        tokens[r * token_stride] = k;
        if (advance) lstm_row(hw + r * ld + V, table + k * 4 * H, h + r * H, c + r * H, H);
    }
}

/* The LSTM half of rollout_step for inputs that depend on the drawn tokens (the generator's bar
 * features): row r's state moves on with the recurrent gates hw[r * ld + V ..] (overwritten)
 * plus inputs (R, 4H), row r. */
void lstm_rows(float *hw, int64_t ld, int64_t V, const float *inputs, int64_t H, float *h, float *c, int64_t R) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) lstm_row(hw + r * ld + V, inputs + r * 4 * H, h + r * H, c + r * H, H);
}

/* For columns [j0, j0 + 8 NV): out = max(out, max over windows s in [s0, L) of
 * bias + sum_k table[(k V + tokens[s + k]) n]), accumulated in NV vector registers per window,
 * two windows at a time (independent chains of additions hide their latency). */
#define WINDOW_MAX_COLUMNS(NV)                                                                    \
    for (; j0 + 8 * NV <= n; j0 += 8 * NV) {                                                     \
        v8 best[NV], acc[NV], acc2[NV];                                                          \
        for (int q = 0; q < NV; q++) best[q] = *(const v8 *)(out + j0 + 8 * q);                  \
        int64_t s = s0;                                                                          \
        for (; s + 1 < L; s += 2) {                                                              \
            for (int q = 0; q < NV; q++) acc[q] = acc2[q] = *(const v8 *)(bias + j0 + 8 * q);    \
            for (int64_t k = 0; k < w; k++) {                                                    \
                const float *row = table + (k * V + tokens[s + k]) * n + j0;                     \
                const float *row2 = table + (k * V + tokens[s + 1 + k]) * n + j0;                \
                for (int q = 0; q < NV; q++) acc[q] += *(const v8 *)(row + 8 * q);               \
                for (int q = 0; q < NV; q++) acc2[q] += *(const v8 *)(row2 + 8 * q);             \
            }                                                                                    \
            for (int q = 0; q < NV; q++) best[q] = vmax(best[q], vmax(acc[q], acc2[q]));         \
        }                                                                                        \
        if (s < L) {                                                                             \
            for (int q = 0; q < NV; q++) acc[q] = *(const v8 *)(bias + j0 + 8 * q);              \
            for (int64_t k = 0; k < w; k++) {                                                    \
                const float *row = table + (k * V + tokens[s + k]) * n + j0;                     \
                for (int q = 0; q < NV; q++) acc[q] += *(const v8 *)(row + 8 * q);               \
            }                                                                                    \
            for (int q = 0; q < NV; q++) best[q] = vmax(best[q], acc[q]);                        \
        }                                                                                        \
        for (int q = 0; q < NV; q++) *(v8 *)(out + j0 + 8 * q) = best[q];                        \
    }

static void window_max(const int32_t *restrict tokens, const float *restrict table, const float *restrict bias,
                       int64_t s0, int64_t L, int64_t V, int64_t w, int64_t n, float *restrict out) {
    int64_t j0 = 0;
    WINDOW_MAX_COLUMNS(4)
    WINDOW_MAX_COLUMNS(1)
    for (; j0 < n; j0++) {
        float best = out[j0];
        for (int64_t s = s0; s < L; s++) {
            float acc = bias[j0];
            for (int64_t k = 0; k < w; k++) acc += table[(k * V + tokens[s + k]) * n + j0];
            best = acc > best ? acc : best;
        }
        out[j0] = best;
    }
}

/* D's rectified max-over-time pooled features (relu commutes with the max, so the max starts at
 * 0) of the completions of P consecutive prefix lengths p0 .. p0 + P - 1: tokens (P, R, T) int32
 * with R = rollouts * B rows ordered (rollout, sample). Filter width i (widths[i] = w, filters[i]
 * = n) fills its n columns of the row, in order: windows reaching into the completion (start >=
 * p - w + 1) are summed from tables[i] (w V, n) plus biases[i] (n); those inside the prefix come
 * pooled in insides[i] (B, T - w + 1, n), entry [b, s] = max over windows starting <= s of sample
 * b. Writes pooled (P, R, F), F = the sum of filters. One width after the other, so that its
 * table stays in cache. */
void pool_windows(const int32_t *tokens, int64_t p0, int64_t P, int64_t R, int64_t B, int64_t T, int64_t V,
                  int64_t nwidths, const int64_t *widths, const int64_t *filters, const float *const *tables,
                  const float *const *biases, const float *const *insides, float *pooled, int64_t F) {
#pragma omp parallel
    for (int64_t i = 0, col = 0; i < nwidths; col += filters[i], i++) {
        int64_t w = widths[i], n = filters[i], L = T - w + 1;
#pragma omp for schedule(static)
        for (int64_t pr = 0; pr < P * R; pr++) {
            int64_t p = p0 + pr / R, r = pr % R;
            float *out = pooled + pr * F + col;
            const float *prefix_max = p >= w ? insides[i] + ((r % B) * L + (p - w)) * n : 0;
            for (int64_t j = 0; j < n; j++) out[j] = prefix_max && prefix_max[j] > 0.0f ? prefix_max[j] : 0.0f;
            window_max(tokens + pr * T, tables[i], biases[i], p - w + 1 > 0 ? p - w + 1 : 0, L, V, w, n, out);
        }
    }
}

/* D's head on R rows of rectified pooled features x (R, F). z (R, 2F) holds the highway's gate
 * and transform pre-activations [x W_gate + b_gate | x W_proj + b_proj] from one matmul. Per row:
 * y = t relu(proj) + (1 - t) x with t = sigmoid(gate) (dropout is off when D scores), then the
 * probability of real softmax(logits)[1] = sigmoid(w_diff . y + b_diff), where w_diff (F) and
 * b_diff are the output layer's real row minus its fake row. Writes probs (R). */
void highway_real_prob(const float *z, const float *x, const float *w_diff, float b_diff, int64_t F, int64_t R,
                       float *probs) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *restrict gate = z + r * 2 * F, *restrict proj = gate + F, *restrict xr = x + r * F;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < F; j++) {
            float t = sigmoid(gate[j]), p = proj[j] > 0.0f ? proj[j] : 0.0f;
            s += (t * p + (1.0f - t) * xr[j]) * w_diff[j];
        }
        probs[r] = sigmoid(s + b_diff);
    }
}
