using Xunit;
using Sora.Kernels.Gpu;
using Sora.Native.Wan.Vae;
using Sora.Runtime;
using Sora.Tests.Text;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// The Wan2.2 VAE's parameter-free shortcuts, streamed one frame at a time as the VAE runs them, against float64
/// references written from diffusers' AvgDown3D / DupUp3D applied to the whole sequence (which is what the
/// reference's chunks amount to: see the classes' remarks). Channel ratios beyond the fixtures' (groups of other
/// sizes, repeats that do not divide the factor) exercise every indexing path. Outputs are NaN-poisoned.
/// </summary>
public sealed class Vae22ShortcutTests
{
    public static TheoryData<string, int, int, bool, bool> AvgCases => new()
    {
        { "cpu", 4, 8, true, true },   // g = 4
        { "cpu", 8, 8, false, true },  // g = 4, spatial only
        { "cpu", 6, 4, true, true },   // g = 12
        { "cpu", 4, 4, false, false }, // the last stage: identity
        { "ilgpu-cpu", 6, 4, true, true },
    };

    [Theory]
    [MemberData(nameof(AvgCases))]
    public void AvgDown3d_streamed_matches_the_whole_sequence_reference(string backendName, int inChannels, int outChannels, bool temporal, bool spatial)
    {
        using var backend = new PoisoningBackend(Create(backendName));
        using var constants = new OwnedTensors(backend);
        var shortcut = new AvgDown3d(backend, constants, inChannels, outChannels, temporal, spatial);
        const int frames = 7, h = 6, w = 4;
        var x = RandomValues(inChannels * frames * h * w, seed: inChannels * 31 + outChannels);
        var expected = AvgDownReference(x, inChannels, frames, h, w, outChannels, temporal ? 2 : 1, spatial ? 2 : 1);

        var outputs = new List<float[]>();
        for (int pass = 0; pass < 2; pass++) // the second pass checks that Reset forgets the pending frame and the first-frame state
        {
            outputs.Clear();
            for (int f = 0; f < frames; f++)
            {
                using var frame = ToBackend(backend, Frame(x, inChannels, frames, h * w, f), [inChannels, 1, h, w]);
                using var y = shortcut.Forward(frame);
                if (y is not null) outputs.Add(Read(backend, y));
            }
            shortcut.Reset();
            Assert.True(RelativeError(Stack(outputs, outChannels), expected) < 1e-6, $"pass {pass}: relative error {RelativeError(Stack(outputs, outChannels), expected):E2}");
        }
        Assert.Equal(temporal ? 1 + (frames - 1) / 2 : frames, outputs.Count);
    }

    public static TheoryData<string, int, int, bool> DupCases => new()
    {
        { "cpu", 8, 8, true },   // r = F = 8 (Wan2.2's first stages)
        { "cpu", 8, 4, false },  // r = 2 divides F = 4 (Wan2.2's third stage)
        { "cpu", 4, 6, true },   // r = 12, F = 8: period 3
        { "cpu", 2, 8, false },  // r = 16, F = 4: each channel spans 4 outputs
        { "ilgpu-cpu", 4, 6, true },
    };

    [Theory]
    [MemberData(nameof(DupCases))]
    public void DupUp3d_streamed_matches_the_whole_sequence_reference(string backendName, int inChannels, int outChannels, bool temporal)
    {
        using var backend = new PoisoningBackend(Create(backendName));
        var shortcut = new DupUp3d(backend, inChannels, outChannels, temporal);
        const int frames = 3, h = 3, w = 5;
        var x = RandomValues(inChannels * frames * h * w, seed: inChannels * 17 + outChannels);
        var expected = DupUpReference(x, inChannels, frames, h, w, outChannels, temporal ? 2 : 1);

        for (int pass = 0; pass < 2; pass++)
        {
            var outputs = new List<float[]>();
            for (int f = 0; f < frames; f++)
            {
                using var frame = ToBackend(backend, Frame(x, inChannels, frames, h * w, f), [inChannels, 1, h, w]);
                using var y = shortcut.Forward(frame);
                Assert.Equal(f == 0 || !temporal ? 1 : 2, y.Dim(1));
                outputs.Add(Read(backend, y));
            }
            shortcut.Reset();
            double error = RelativeError(Stack(outputs, outChannels), expected);
            Assert.True(error < 1e-6, $"pass {pass}: relative error {error:E2}");
        }
    }

    private static IBackend Create(string name) => name == "cpu" ? NewCpuBackend() : IlgpuBackend.CreateCpu();

    /// <summary>
    /// diffusers AvgDown3D in float64: front zero padding of time to a multiple of ft, the (c, dt, dh, dw) values
    /// of each block in that order, then means of consecutive groups. Result [out, T', H/fs, W/fs] flattened.
    /// </summary>
    private static float[] AvgDownReference(float[] x, int c, int t, int h, int w, int outChannels, int ft, int fs)
    {
        int pad = (ft - t % ft) % ft, tt = (t + pad) / ft, oh = h / fs, ow = w / fs, factor = ft * fs * fs, group = c * factor / outChannels;
        var y = new float[outChannels * tt * oh * ow];
        for (int o = 0; o < outChannels; o++)
            for (int ti = 0; ti < tt; ti++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        double sum = 0;
                        for (int n = o * group; n < (o + 1) * group; n++)
                        {
                            int ci = n / factor, dt = n % factor / (fs * fs), dh = n % (fs * fs) / fs, dw = n % fs;
                            int frame = ti * ft + dt - pad;
                            if (frame >= 0) sum += x[((ci * t + frame) * h + i * fs + dh) * w + j * fs + dw];
                        }
                        y[((o * tt + ti) * oh + i) * ow + j] = (float)(sum / group);
                    }
        return y;
    }

    /// <summary>diffusers DupUp3D (fs = 2) with first_chunk: y[o, ft·t+dt, 2h+dh, 2w+dw] = x[(o·F + dt·4 + dh·2 + dw) / r, t, h, w], first ft−1 frames dropped.</summary>
    private static float[] DupUpReference(float[] x, int c, int t, int h, int w, int outChannels, int ft)
    {
        const int fs = 2;
        int factor = ft * fs * fs, repeats = outChannels * factor / c, drop = ft - 1, ot = t * ft - drop, oh = fs * h, ow = fs * w;
        var y = new float[outChannels * ot * oh * ow];
        for (int o = 0; o < outChannels; o++)
            for (int f = 0; f < ot; f++)
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        int full = f + drop, dt = full % ft, dh = i % fs, dw = j % fs;
                        int ci = (o * factor + dt * fs * fs + dh * fs + dw) / repeats;
                        y[((o * ot + f) * oh + i) * ow + j] = x[((ci * t + full / ft) * h + i / fs) * w + j / fs];
                    }
        return y;
    }

    private static float[] RandomValues(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = 2 * rng.NextSingle() - 1;
        return v;
    }

    /// <summary>Frame f of [C, T, plane] values.</summary>
    private static float[] Frame(float[] x, int c, int t, int plane, int f)
    {
        var frame = new float[c * plane];
        for (int i = 0; i < c; i++) Array.Copy(x, (i * t + f) * plane, frame, i * plane, plane);
        return frame;
    }

    /// <summary>Per-call outputs [C, t_k, plane] concatenated along time into [C, Σt_k, plane].</summary>
    private static float[] Stack(List<float[]> outputs, int c)
    {
        int total = outputs.Sum(o => o.Length);
        var y = new float[total];
        int rowOffset = 0;
        foreach (var o in outputs)
        {
            int row = o.Length / c;
            for (int i = 0; i < c; i++) Array.Copy(o, i * row, y, i * (total / c) + rowOffset, row);
            rowOffset += row;
        }
        return y;
    }
}
