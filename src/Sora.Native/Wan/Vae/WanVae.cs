using Sora.Native.Loading;
using Sora.Native.Wan.Vae;
using Sora.Runtime;
using Sora.Runtime.Safetensors;

namespace Sora.Native.Wan;

/// <summary>
/// The Wan video VAE (diffusers <c>AutoencoderKLWan</c>), both generations from vae/config.json: Wan2.1 (8× in
/// space) and Wan2.2 (16×: 2×2 pixel patches folded into channels around a residual network), 4× in time,
/// causal in time. Video is streamed one frame at a time through encoder and decoder, each causal layer carrying the last frames
/// it needs (the reference's chunks, first frame alone then 4 frames, or one latent frame, give the same result
/// because every layer is causal), so working memory does not grow with the number of frames; only the result
/// grows. One encode or decode at a time per instance (the caches are state).
/// </summary>
public sealed class WanVae : IDisposable
{
    private readonly IBackend _backend;
    private readonly SafetensorsCheckpoint _checkpoint;
    private readonly WeightSet _weights;
    private readonly OwnedTensors _constants;
    private readonly Encoder _encoder;
    private readonly CausalConv3d _quantConv;
    private readonly CausalConv3d _postQuantConv;
    private readonly Decoder _decoder;

    private WanVae(WanVaeConfig config, IBackend backend, SafetensorsCheckpoint checkpoint, WeightSet weights, OwnedTensors constants)
    {
        Config = config;
        _backend = backend;
        _checkpoint = checkpoint;
        _weights = weights;
        _constants = constants;
        _encoder = new Encoder(weights, backend, config, constants);
        _quantConv = CausalConv3d.Pointwise(weights, "quant_conv", backend, 2 * config.ZDim, 2 * config.ZDim);
        _postQuantConv = CausalConv3d.Pointwise(weights, "post_quant_conv", backend, config.ZDim, config.ZDim);
        _decoder = new Decoder(weights, backend, config);
        weights.EnsureAllBound();
    }

    public WanVaeConfig Config { get; }
    public int ZDim => Config.ZDim;
    /// <summary>Per-channel latent statistics: the pipeline decodes z·std + mean.</summary>
    public float[] LatentsMean => Config.LatentsMean;
    public float[] LatentsStd => Config.LatentsStd;

    /// <summary>Loads vae/config.json and the safetensors weights of a diffusers VAE folder onto the backend.</summary>
    public static WanVae Load(string vaeDir, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!Directory.Exists(vaeDir)) throw new ModelLoadException($"{vaeDir}: VAE folder not found");
        var config = WanVaeConfig.Load(Path.Combine(vaeDir, "config.json"));
        var checkpoint = SafetensorsCheckpoint.Open(vaeDir);
        var weights = new WeightSet(checkpoint, backend);
        var constants = new OwnedTensors(backend);
        try
        {
            return new WanVae(config, backend, checkpoint, weights, constants);
        }
        catch
        {
            constants.Dispose();
            weights.Dispose();
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Decodes raw (already de-normalised) latents [z, T, h, w] on the backend to a new tensor
    /// [3, 4(T−1)+1, s·h, s·w] (s = <see cref="WanVaeConfig.SpatialFactor"/>) with values clamped to [−1, 1].
    /// </summary>
    public Tensor Decode(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (latents.Rank != 4 || latents.Dim(0) != ZDim || latents.Dim(1) < 1 || latents.Dim(2) < 1 || latents.Dim(3) < 1)
            throw new ArgumentException($"latents must be [z={ZDim}, T≥1, h, w], got {latents.ShapeString}", nameof(latents));
        RequireF32(latents, nameof(latents));
        int t = latents.Dim(1), h = latents.Dim(2), w = latents.Dim(3);
        int frames = 1 + Config.TemporalFactor * (t - 1), s = Config.SpatialFactor;

        var video = _backend.Allocate(DType.F32, Config.PixelOutChannels, frames, s * h, s * w);
        try
        {
            _decoder.Reset();
            int written = 0;
            for (int i = 0; i < t; i++)
            {
                Tensor zq;
                using (var z = _backend.Allocate(DType.F32, ZDim, 1, h, w))
                {
                    _backend.Copy(latents.Slice(1, i, 1), z);
                    zq = _postQuantConv.Forward(z);
                }
                _decoder.Forward(zq, frame =>
                {
                    if (written == frames) throw new InvalidOperationException($"decoder produced more than {frames} frames");
                    _backend.Clamp(frame, -1f, 1f, frame);
                    _backend.Copy(PatchChannels(frame), PixelPatches(video, written++));
                });
            }
            if (written != frames) throw new InvalidOperationException($"decoder produced {written} frames, expected {frames}");
            return video;
        }
        catch
        {
            video.Dispose();
            throw;
        }
        finally
        {
            _decoder.Reset();
        }
    }

    /// <summary>
    /// Encodes video [3, F, H, W] in [−1, 1] (H, W multiples of s = <see cref="WanVaeConfig.SpatialFactor"/>) to
    /// the posterior's mean and log-variance, each a new tensor [z, 1+⌊(F−1)/4⌋, H/s, W/s]; frames beyond 1+4k
    /// are dropped as in diffusers. The mean is raw: normalise it with (mean − LatentsMean)/LatentsStd for the
    /// transformer.
    /// </summary>
    public (Tensor Mean, Tensor LogVar) Encode(Tensor video)
    {
        ArgumentNullException.ThrowIfNull(video);
        int s = Config.SpatialFactor, tf = Config.TemporalFactor;
        if (video.Rank != 4 || video.Dim(0) != Config.PixelInChannels || video.Dim(1) < 1)
            throw new ArgumentException($"video must be [{Config.PixelInChannels}, F≥1, H, W], got {video.ShapeString}", nameof(video));
        if (video.Dim(2) < s || video.Dim(2) % s != 0 || video.Dim(3) < s || video.Dim(3) % s != 0)
            throw new ArgumentException($"video height and width must be positive multiples of {s}, got {video.ShapeString}", nameof(video));
        RequireF32(video, nameof(video));
        int latentFrames = 1 + (video.Dim(1) - 1) / tf, h = video.Dim(2) / s, w = video.Dim(3) / s;

        var mean = _backend.Allocate(DType.F32, ZDim, latentFrames, h, w);
        var logVar = _backend.Allocate(DType.F32, ZDim, latentFrames, h, w);
        try
        {
            _encoder.Reset();
            int written = 0;
            for (int f = 0; f < 1 + tf * (latentFrames - 1); f++)
            {
                var x = _backend.Allocate(DType.F32, Config.InChannels, 1, video.Dim(2) / Config.PatchSize, video.Dim(3) / Config.PatchSize);
                _backend.Copy(PixelPatches(video, f), PatchChannels(x));
                _encoder.Forward(x, latent =>
                {
                    if (written == latentFrames) throw new InvalidOperationException($"encoder produced more than {latentFrames} latent frames");
                    using var q = _quantConv.Forward(latent);
                    _backend.Copy(q.Slice(0, 0, ZDim), mean.Slice(1, written, 1));
                    _backend.Copy(q.Slice(0, ZDim, ZDim), logVar.Slice(1, written, 1));
                    written++;
                });
            }
            if (written != latentFrames) throw new InvalidOperationException($"encoder produced {written} latent frames, expected {latentFrames}");
            // diffusers' DiagonalGaussianDistribution clamps the log-variance.
            _backend.Clamp(logVar, -30f, 20f, logVar);
            return (mean, logVar);
        }
        catch
        {
            mean.Dispose();
            logVar.Dispose();
            throw;
        }
        finally
        {
            _encoder.Reset();
        }
    }

    /// <summary>
    /// Frame f of video [C, F, H, W] seen as its p×p pixel patches [C, r, q, H/p, W/p]: element (c, r, q, i, j) is
    /// pixel (p·i + q, p·j + r), q the row and r the column offset (diffusers' patchify order).
    /// </summary>
    private Tensor PixelPatches(Tensor video, int f)
    {
        int p = Config.PatchSize;
        if (p == 1) return video.Slice(1, f, 1);
        var st = video.Strides;
        return new Tensor(video.Storage, [video.Dim(0), p, p, video.Dim(2) / p, video.Dim(3) / p],
            [st[0], st[3], st[2], p * st[2], p * st[3]], video.Offset + f * st[1]);
    }

    /// <summary>
    /// A patchified frame [C·p², 1, h, w] (contiguous) as [C, r, q, h, w]: channel c·p² + r·p + q holds the
    /// pixels at row offset q and column offset r, matching <see cref="PixelPatches"/>.
    /// </summary>
    private Tensor PatchChannels(Tensor frame)
    {
        int p = Config.PatchSize;
        return p == 1 ? frame : frame.Reshape(frame.Dim(0) / (p * p), p, p, frame.Dim(2), frame.Dim(3));
    }

    private static void RequireF32(Tensor t, string name)
    {
        if (t.DType != DType.F32) throw new ArgumentException($"{name} must be F32, got {DTypes.SafetensorsName(t.DType)}", name);
    }

    public void Dispose()
    {
        _encoder.Reset();
        _decoder.Reset();
        _constants.Dispose();
        _weights.Dispose();
        _checkpoint.Dispose();
    }
}
