namespace Sora.Tests.Kernels;

/// <summary>
/// Float64 reference implementations of every IBackend op on plain row-major arrays, written for clarity
/// straight from the op definitions (no blocking, no fusion). Backend-agnostic: tests of any backend compare
/// their outputs against these.
/// </summary>
public static class Reference
{
    public enum Epilogue { None, GeluTanh, Silu, AddResidual, GatedResidual }

    public static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    public static double Silu(double x) => x / (1 + Math.Exp(-x));

    /// <summary>y[M,N] = epilogue(x[M,K]·w[N,K]ᵀ + bias).</summary>
    public static double[] Gemm(double[] x, double[] w, double[]? bias, int m, int n, int k,
        Epilogue epilogue = Epilogue.None, double[]? residual = null, double[]? gate = null)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias?[j] ?? 0;
                for (int p = 0; p < k; p++) s += x[i * k + p] * w[j * k + p];
                y[i * n + j] = epilogue switch
                {
                    Epilogue.GeluTanh => GeluTanh(s),
                    Epilogue.Silu => Silu(s),
                    Epilogue.AddResidual => residual![i * n + j] + s,
                    Epilogue.GatedResidual => residual![i * n + j] + gate![j] * s,
                    _ => s,
                };
            }
        return y;
    }

    /// <summary>
    /// softmax(scale·q·kᵀ + bias)·v per sequence and head, q [Nq,H,D], k/v [Nk,H,D], packed sequences,
    /// keys beyond the valid length masked, a query with no visible key → zeros.
    /// </summary>
    public static double[] Attention(double[] q, double[] k, double[] v, int nq, int nk, int h, int d, double scale,
        int[]? queryOffsets = null, int[]? keyOffsets = null, int[]? validKeys = null, double[]? relBias = null, int relCenter = 0)
    {
        int[] qo = queryOffsets ?? [0, nq], ko = keyOffsets ?? [0, nk];
        var o = new double[nq * h * d];
        int width = 2 * relCenter + 1;
        for (int b = 0; b + 1 < qo.Length; b++)
        {
            int valid = validKeys?[b] ?? ko[b + 1] - ko[b];
            for (int i = 0; i < qo[b + 1] - qo[b]; i++)
                for (int head = 0; head < h; head++)
                {
                    if (valid == 0) continue;
                    var s = new double[valid];
                    for (int j = 0; j < valid; j++)
                    {
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += q[((qo[b] + i) * h + head) * d + c] * k[((ko[b] + j) * h + head) * d + c];
                        s[j] = scale * dot + (relBias is null ? 0 : relBias[head * width + (j - i) + relCenter]);
                    }
                    double max = s.Max(), sum = 0;
                    for (int j = 0; j < valid; j++) sum += s[j] = Math.Exp(s[j] - max);
                    for (int j = 0; j < valid; j++)
                        for (int c = 0; c < d; c++)
                            o[((qo[b] + i) * h + head) * d + c] += s[j] / sum * v[((ko[b] + j) * h + head) * d + c];
                }
        }
        return o;
    }

    /// <summary>Interleaved-pair rotary embedding of x [R, H, D] with cos/sin [S, D/2], row r at position r mod S.</summary>
    public static double[] Rope(double[] x, double[] cos, double[] sin, int rows, int h, int d, int s)
    {
        var y = (double[])x.Clone();
        for (int r = 0; r < rows; r++)
            for (int head = 0; head < h; head++)
                for (int i = 0; i < d / 2; i++)
                {
                    int at = (r * h + head) * d + 2 * i;
                    double c = cos[(r % s) * (d / 2) + i], sn = sin[(r % s) * (d / 2) + i];
                    y[at] = x[at] * c - x[at + 1] * sn;
                    y[at + 1] = x[at] * sn + x[at + 1] * c;
                }
        return y;
    }

    /// <summary>
    /// Conv3d of x [Cin,T,H,W] with w [Cout,Cin,kT,kH,kW], explicit zero padding per side; the time cache
    /// [Cin,Tc,H,W] is placed in front of x and replaces up to Tc frames of the left padding.
    /// </summary>
    public static double[] Conv3d(double[] x, int cin, int t, int h, int w, double[] wt, int cout, int kt, int kh, int kw,
        double[]? bias, int st, int sh, int sw, int pt0, int pt1, int ph0, int ph1, int pw0, int pw1,
        double[]? cache, int tc, out int ot, out int oh, out int ow)
    {
        int left = Math.Max(pt0, tc);
        int tt = left + t + pt1, hh = ph0 + h + ph1, ww = pw0 + w + pw1;
        var padded = new double[cin * tt * hh * ww];
        for (int c = 0; c < cin; c++)
            for (int u = 0; u < tt; u++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++)
                    {
                        int f = u - left;
                        double val = f >= 0 && f < t ? x[((c * t + f) * h + i) * w + j]
                            : f < 0 && f >= -tc ? cache![((c * tc + (tc + f)) * h + i) * w + j] : 0;
                        padded[((c * tt + u) * hh + i + ph0) * ww + j + pw0] = val;
                    }
        ot = (tt - kt) / st + 1;
        oh = (hh - kh) / sh + 1;
        ow = (ww - kw) / sw + 1;
        var y = new double[cout * ot * oh * ow];
        for (int co = 0; co < cout; co++)
            for (int a = 0; a < ot; a++)
                for (int b = 0; b < oh; b++)
                    for (int e = 0; e < ow; e++)
                    {
                        double s = bias?[co] ?? 0;
                        for (int ci = 0; ci < cin; ci++)
                            for (int dt = 0; dt < kt; dt++)
                                for (int dh = 0; dh < kh; dh++)
                                    for (int dw = 0; dw < kw; dw++)
                                        s += wt[(((co * cin + ci) * kt + dt) * kh + dh) * kw + dw]
                                             * padded[((ci * tt + a * st + dt) * hh + b * sh + dh) * ww + e * sw + dw];
                        y[((co * ot + a) * oh + b) * ow + e] = s;
                    }
        return y;
    }

    public static double[] LayerNorm(double[] x, int m, int n, double[]? weight, double[]? bias, double eps)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            double mean = 0, var = 0;
            for (int j = 0; j < n; j++) mean += x[i * n + j];
            mean /= n;
            for (int j = 0; j < n; j++) var += (x[i * n + j] - mean) * (x[i * n + j] - mean);
            var /= n;
            for (int j = 0; j < n; j++)
                y[i * n + j] = (x[i * n + j] - mean) / Math.Sqrt(var + eps) * (weight?[j] ?? 1) + (bias?[j] ?? 0);
        }
        return y;
    }

    public static double[] RmsNorm(double[] x, int m, int n, double[] weight, double eps)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            double ss = 0;
            for (int j = 0; j < n; j++) ss += x[i * n + j] * x[i * n + j];
            double inv = 1 / Math.Sqrt(ss / n + eps);
            for (int j = 0; j < n; j++) y[i * n + j] = x[i * n + j] * inv * weight[j];
        }
        return y;
    }

    public static double[] ChannelRmsNorm(double[] x, int c, int l, double[] gamma, double[]? beta)
    {
        var y = new double[c * l];
        for (int p = 0; p < l; p++)
        {
            double ss = 0;
            for (int ch = 0; ch < c; ch++) ss += x[ch * l + p] * x[ch * l + p];
            double norm = Math.Max(Math.Sqrt(ss), 1e-12);
            for (int ch = 0; ch < c; ch++) y[ch * l + p] = x[ch * l + p] / norm * Math.Sqrt(c) * gamma[ch] + (beta?[ch] ?? 0);
        }
        return y;
    }

    public static double[] AdaLnModulate(double[] x, int m, int n, double[] shift, double[] scale, double eps)
    {
        var y = LayerNorm(x, m, n, null, null, eps);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) y[i * n + j] = y[i * n + j] * (1 + scale[j]) + shift[j];
        return y;
    }

    /// <summary>
    /// y[r] = LayerNorm(x[r])·(1 + (scaleBase + scale[s])) + (shiftBase + shift[s]) with s = sets[r]; shift and
    /// scale dense [G, n].
    /// </summary>
    public static double[] AdaLnModulateRows(double[] x, int m, int n, double[] shiftBase, double[] shift, double[] scaleBase, double[] scale,
        int[] sets, double eps)
    {
        var y = LayerNorm(x, m, n, null, null, eps);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                int s = sets[i] * n + j;
                y[i * n + j] = y[i * n + j] * (1 + scaleBase[j] + scale[s]) + shiftBase[j] + shift[s];
            }
        return y;
    }

    /// <summary>y[r] = residual[r] + (gateBase + gate[sets[r]]) ⊙ (x[r]·wᵀ + bias), gate dense [G, n].</summary>
    public static double[] GemmGatedRows(double[] x, double[] w, double[]? bias, int m, int n, int k, double[] residual,
        double[] gateBase, double[] gate, int[] sets)
    {
        var y = Gemm(x, w, bias, m, n, k);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) y[i * n + j] = residual[i * n + j] + (gateBase[j] + gate[sets[i] * n + j]) * y[i * n + j];
        return y;
    }

    /// <summary>x + gate ⊙ y, gate broadcast over rows of width n.</summary>
    public static double[] GatedResidual(double[] x, double[] y, double[] gate, int n) =>
        x.Select((xi, i) => xi + gate[i % n] * y[i]).ToArray();

    public static double[] Map(double[] x, Func<double, double> f) => x.Select(f).ToArray();

    public static double[] Zip(double[] a, double[] b, Func<double, double, double> f) => a.Select((ai, i) => f(ai, b[i])).ToArray();

    public static double[] ChannelAffine(double[] x, int c, double[] scale, double[] shift)
    {
        int l = x.Length / c;
        return x.Select((xi, i) => xi * scale[i / l] + shift[i / l]).ToArray();
    }

    public static double[] LinearCombination(double[] coefficients, double[][] terms)
    {
        var y = new double[terms[0].Length];
        for (int t = 0; t < terms.Length; t++)
            for (int i = 0; i < y.Length; i++) y[i] += coefficients[t] * terms[t][i];
        return y;
    }

    public static double[] Upsample2x(double[] x, int c, int t, int h, int w)
    {
        var y = new double[c * t * 4 * h * w];
        for (int p = 0; p < c * t; p++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    y[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
        return y;
    }

    /// <summary>diffusers get_timestep_embedding with max_period 10000 and scale 1.</summary>
    public static double[] TimestepEmbedding(double[] timesteps, int dim, bool flipSinToCos, double downscaleFreqShift)
    {
        int half = dim / 2;
        var y = new double[timesteps.Length * dim];
        for (int b = 0; b < timesteps.Length; b++)
            for (int i = 0; i < half; i++)
            {
                double angle = timesteps[b] * Math.Exp(-Math.Log(10000) * i / (half - downscaleFreqShift));
                y[b * dim + i] = flipSinToCos ? Math.Cos(angle) : Math.Sin(angle);
                y[b * dim + half + i] = flipSinToCos ? Math.Sin(angle) : Math.Cos(angle);
            }
        return y;
    }

    public static double[] Embedding(int[] ids, double[] table, int d)
    {
        var y = new double[ids.Length * d];
        for (int i = 0; i < ids.Length; i++) Array.Copy(table, ids[i] * d, y, i * d, d);
        return y;
    }

    /// <summary>x [C,T,H,W] → [T'H'W', C·pt·ph·pw], features (c, kt, kh, kw).</summary>
    public static double[] Patchify(double[] x, int c, int t, int h, int w, int pt, int ph, int pw)
    {
        int tt = t / pt, hh = h / ph, ww = w / pw, f = c * pt * ph * pw;
        var y = new double[tt * hh * ww * f];
        for (int a = 0; a < tt; a++)
            for (int b = 0; b < hh; b++)
                for (int e = 0; e < ww; e++)
                    for (int ch = 0; ch < c; ch++)
                        for (int i = 0; i < pt; i++)
                            for (int j = 0; j < ph; j++)
                                for (int l = 0; l < pw; l++)
                                    y[((a * hh + b) * ww + e) * f + ((ch * pt + i) * ph + j) * pw + l] =
                                        x[((ch * t + a * pt + i) * h + b * ph + j) * w + e * pw + l];
        return y;
    }

    /// <summary>x [T'H'W', pt·ph·pw·C] with features (kt, kh, kw, c) → y [C, T'pt, H'ph, W'pw].</summary>
    public static double[] Unpatchify(double[] x, int c, int t, int h, int w, int pt, int ph, int pw)
    {
        int tt = t / pt, hh = h / ph, ww = w / pw, f = c * pt * ph * pw;
        var y = new double[c * t * h * w];
        for (int a = 0; a < tt; a++)
            for (int b = 0; b < hh; b++)
                for (int e = 0; e < ww; e++)
                    for (int i = 0; i < pt; i++)
                        for (int j = 0; j < ph; j++)
                            for (int l = 0; l < pw; l++)
                                for (int ch = 0; ch < c; ch++)
                                    y[((ch * t + a * pt + i) * h + b * ph + j) * w + e * pw + l] =
                                        x[((a * hh + b) * ww + e) * f + ((i * ph + j) * pw + l) * c + ch];
        return y;
    }
}
