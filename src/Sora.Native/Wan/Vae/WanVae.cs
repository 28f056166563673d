using Sora.Native.Loading;
using Sora.Native.Wan.Vae;
using Sora.Runtime;

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
    private readonly ITensorSource _checkpoint;
    private readonly WeightSet _weights;
    private readonly OwnedTensors _constants;
    private readonly Encoder _encoder;
    private readonly CausalConv3d _quantConv;
    private readonly CausalConv3d _postQuantConv;
    private readonly Decoder _decoder;

    private WanVae(WanVaeConfig config, IBackend backend, ITensorSource checkpoint, WeightSet weights, OwnedTensors constants)
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

    /// <summary>
    /// Loads a VAE onto the backend from a diffusers folder (vae/config.json and safetensors weights) or a single
    /// Wan2.1 file in the original layout (wan_2.1_vae.safetensors: encoder.downsamples.*, decoder.upsamples.*,
    /// conv1/conv2), .safetensors or .gguf, its architecture inferred from the shapes; <paramref name="configPath"/>:
    /// a diffusers vae config.json to use instead.
    /// </summary>
    public static WanVae Load(string path, IBackend backend, string? configPath = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(backend);
        if (!Directory.Exists(path) && !File.Exists(path)) throw new ModelLoadException($"{path}: VAE folder or file not found");
        var (checkpoint, config) = WanComponents.Vae(path, configPath);
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
    public Tensor Decode(Tensor latents) => Decode([latents])[0];

    /// <summary>
    /// Decodes several clips' latents of one shape side by side in one pass: every layer runs once per frame for all
    /// of them (one frame of each clip, see <see cref="IChunkLayer"/>), each clip with its own history. Returns a new
    /// tensor per clip, in order, each what <see cref="Decode(Tensor)"/> gives it (equal up to rounding).
    /// </summary>
    public Tensor[] Decode(IReadOnlyList<Tensor> latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (latents.Count == 0) throw new ArgumentException("at least one clip's latents are needed", nameof(latents));
        for (int b = 0; b < latents.Count; b++)
        {
            var l = latents[b] ?? throw new ArgumentNullException(nameof(latents), $"latents[{b}] is null");
            if (l.Rank != 4 || l.Dim(0) != ZDim || l.Dim(1) < 1 || l.Dim(2) < 1 || l.Dim(3) < 1)
                throw new ArgumentException($"latents must be [z={ZDim}, T≥1, h, w], got {l.ShapeString}" + (latents.Count > 1 ? $" for clip {b}" : ""), nameof(latents));
            if (!l.Shape.SequenceEqual(latents[0].Shape))
                throw new ArgumentException($"clips decoded together must have one shape: clip {b} is {l.ShapeString}, clip 0 {latents[0].ShapeString}", nameof(latents));
            RequireF32(l, nameof(latents));
        }
        int n = latents.Count, t = latents[0].Dim(1), h = latents[0].Dim(2), w = latents[0].Dim(3);
        int frames = 1 + Config.TemporalFactor * (t - 1), s = Config.SpatialFactor;

        var videos = new List<Tensor>(n);
        try
        {
            for (int b = 0; b < n; b++) videos.Add(_backend.Allocate(DType.F32, Config.PixelOutChannels, frames, s * h, s * w));
            _decoder.Reset(n);
            int written = 0;
            for (int i = 0; i < t; i++)
            {
                Tensor zq;
                using (var z = _backend.Allocate(DType.F32, ZDim, n, h, w))
                {
                    for (int b = 0; b < n; b++) _backend.Copy(latents[b].Slice(1, i, 1), z.Slice(1, b, 1));
                    zq = _postQuantConv.Forward(z);
                }
                _decoder.Forward(zq, frame =>
                {
                    if (written == frames) throw new InvalidOperationException($"decoder produced more than {frames} frames");
                    _backend.Clamp(frame, -1f, 1f, frame);
                    for (int b = 0; b < n; b++) _backend.Copy(PatchChannels(frame, b), PixelPatches(videos[b], written));
                    written++;
                });
            }
            if (written != frames) throw new InvalidOperationException($"decoder produced {written} frames, expected {frames}");
            return videos.ToArray();
        }
        catch
        {
            foreach (var v in videos) v.Dispose();
            throw;
        }
        finally
        {
            _decoder.Reset(1);
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
                _backend.Copy(PixelPatches(video, f), PatchChannels(x, 0));
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
    /// Clip <paramref name="clip"/> of a patchified frame [C·p², clips, h, w] as [C, r, q, h, w]: channel c·p² + r·p + q
    /// holds the pixels at row offset q and column offset r, matching <see cref="PixelPatches"/>.
    /// </summary>
    private Tensor PatchChannels(Tensor frame, int clip)
    {
        int p = Config.PatchSize;
        if (p == 1) return frame.Slice(1, clip, 1);
        var st = frame.Strides;
        return new Tensor(frame.Storage, [frame.Dim(0) / (p * p), p, p, frame.Dim(2), frame.Dim(3)],
            [p * p * st[0], p * st[0], st[0], st[2], st[3]], frame.Offset + clip * st[1]);
    }

    private static void RequireF32(Tensor t, string name)
    {
        if (t.DType != DType.F32) throw new ArgumentException($"{name} must be F32, got {DTypes.SafetensorsName(t.DType)}", name);
    }

    public void Dispose()
    {
        _encoder.Reset();
        _decoder.Reset(1);
        _constants.Dispose();
        _weights.Dispose();
        _checkpoint.Dispose();
    }
}
