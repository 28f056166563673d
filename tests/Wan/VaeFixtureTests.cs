using Xunit;
using Sora.Native.Wan;
using Sora.Runtime;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>Parity of <see cref="WanVae"/> with diffusers' AutoencoderKLWan on the wan-small fixtures (CPU backend).</summary>
public sealed class VaeFixtureTests : IDisposable
{
    private readonly IBackend _backend = NewCpuBackend();
    private readonly WanVae _vae;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public VaeFixtureTests(Xunit.Abstractions.ITestOutputHelper output)
    {
        _output = output;
        _vae = WanVae.Load(FixtureVaeDir, _backend);
    }

    public void Dispose()
    {
        _vae.Dispose();
        _backend.Dispose();
    }

    [Fact]
    public void Decode_matches_diffusers()
    {
        var (latents, latentShape) = FixtureTensor("vae_decode_case.safetensors", "latents");
        var (expected, expectedShape) = FixtureTensor("vae_decode_case.safetensors", "expected");
        using var z = ToBackend(_backend, latents, latentShape);
        using var video = _vae.Decode(z);
        Assert.Equal(expectedShape, video.Shape);
        double error = RelativeError(Read(_backend, video), expected);
        _output.WriteLine($"relative error {error:E2}");
        Assert.True(error < 1e-4, $"relative error {error:E2}");
    }

    [Fact]
    public void Encode_matches_diffusers_mean_and_logvar()
    {
        var (video, videoShape) = FixtureTensor("vae_encode_case.safetensors", "video");
        var (expectedMean, meanShape) = FixtureTensor("vae_encode_case.safetensors", "expected_mean");
        var (expectedLogVar, _) = FixtureTensor("vae_encode_case.safetensors", "expected_logvar");
        using var x = ToBackend(_backend, video, videoShape);
        var (mean, logVar) = _vae.Encode(x);
        using (mean)
        using (logVar)
        {
            Assert.Equal(meanShape, mean.Shape);
            Assert.Equal(meanShape, logVar.Shape);
            double meanError = RelativeError(Read(_backend, mean), expectedMean);
            double logVarError = RelativeError(Read(_backend, logVar), expectedLogVar);
            _output.WriteLine($"relative error: mean {meanError:E2}, logvar {logVarError:E2}");
            Assert.True(meanError < 1e-4, $"mean relative error {meanError:E2}");
            Assert.True(logVarError < 1e-4, $"logvar relative error {logVarError:E2}");
        }
    }

    /// <summary>
    /// The decoder is causal and chunked: decoding the first k latent frames must give exactly the first
    /// 4(k−1)+1 frames of decoding all of them, and decoding twice must not leak caches between calls.
    /// </summary>
    [Fact]
    public void Decoding_a_prefix_of_latent_frames_gives_a_prefix_of_the_video()
    {
        var (latents, shape) = FixtureTensor("vae_decode_case.safetensors", "latents");
        using var all = ToBackend(_backend, latents, shape);
        using var full = _vae.Decode(all);
        var fullFrames = Read(_backend, full);
        int frameSize = full.Dim(2) * full.Dim(3);
        for (int k = 1; k < shape[1]; k++)
        {
            using var part = _vae.Decode(all.Slice(1, 0, k)); // a strided view: Decode must not assume contiguous latents
            int frames = 4 * (k - 1) + 1;
            Assert.Equal([3, frames, full.Dim(2), full.Dim(3)], part.Shape);
            Assert.True(RelativeError(Read(_backend, part), Prefix(fullFrames, 3, frames * frameSize)) < 1e-6, $"prefix of {k} latent frames differs");
        }
        using var again = _vae.Decode(all);
        Assert.True(RelativeError(Read(_backend, again), fullFrames) < 1e-6, "a second decode differs from the first");
    }

    /// <summary>Encoding the first 4k+1 frames (k = 0, 1) gives the first k+1 latent frames of encoding more.</summary>
    [Fact]
    public void Encoding_a_prefix_of_frames_gives_a_prefix_of_the_latents()
    {
        var (video, shape) = FixtureTensor("vae_encode_case.safetensors", "video");
        using var all = ToBackend(_backend, video, shape);
        var (fullMean, fullLogVar) = _vae.Encode(all);
        using (fullMean)
        using (fullLogVar)
        {
            var fullMeans = Read(_backend, fullMean);
            var fullLogVars = Read(_backend, fullLogVar);
            int z = fullMean.Dim(0), frame = fullMean.Dim(2) * fullMean.Dim(3);
            foreach (int latentFrames in new[] { 1, 2 })
            {
                var (mean, logVar) = _vae.Encode(all.Slice(1, 0, 4 * (latentFrames - 1) + 1)); // strided view
                using (mean)
                using (logVar)
                {
                    Assert.Equal([z, latentFrames, fullMean.Dim(2), fullMean.Dim(3)], mean.Shape);
                    Assert.True(RelativeError(Read(_backend, mean), Prefix(fullMeans, z, latentFrames * frame)) < 1e-6, $"mean of {latentFrames} latent frames");
                    Assert.True(RelativeError(Read(_backend, logVar), Prefix(fullLogVars, z, latentFrames * frame)) < 1e-6, $"logvar of {latentFrames} latent frames");
                }
            }
        }
    }

    /// <summary>The first <paramref name="length"/> values of each of <paramref name="channels"/> rows of [channels, t·frame].</summary>
    private static float[] Prefix(float[] all, int channels, int length)
    {
        int row = all.Length / channels;
        var result = new float[channels * length];
        for (int c = 0; c < channels; c++) Array.Copy(all, c * row, result, c * length, length);
        return result;
    }

    [Fact]
    public void Frames_beyond_4k_plus_1_are_dropped_like_diffusers()
    {
        var (video, shape) = FixtureTensor("vae_encode_case.safetensors", "video");
        using var all = ToBackend(_backend, video, shape);
        using var seven = _backend.Allocate(DType.F32, shape[0], 7, shape[2], shape[3]);
        _backend.Copy(all.Slice(1, 0, 7), seven);
        var (mean, logVar) = _vae.Encode(seven);
        using (mean)
        using (logVar)
            Assert.Equal(2, mean.Dim(1));
    }

    [Fact]
    public void Bad_arguments_name_the_argument()
    {
        using var wrongZ = _backend.Allocate(DType.F32, 5, 1, 4, 6);
        Assert.Contains("latents", Assert.Throws<ArgumentException>(() => _vae.Decode(wrongZ)).Message);
        using var rank5 = _backend.Allocate(DType.F32, 1, 4, 1, 4, 6);
        Assert.Contains("latents", Assert.Throws<ArgumentException>(() => _vae.Decode(rank5)).Message);
        using var oddSize = _backend.Allocate(DType.F32, 3, 1, 30, 48);
        Assert.Contains("multiples of 8", Assert.Throws<ArgumentException>(() => _vae.Encode(oddSize)).Message);
        using var twoChannels = _backend.Allocate(DType.F32, 2, 1, 32, 48);
        Assert.Contains("video", Assert.Throws<ArgumentException>(() => _vae.Encode(twoChannels)).Message);
    }

    [Fact]
    public void Exposes_config_and_latent_statistics()
    {
        Assert.Equal(4, _vae.ZDim);
        Assert.Equal([0.9006704092025757f, 0.7449628114700317f, 0.008433577604591846f, 0.25084665417671204f], _vae.LatentsMean);
        Assert.Equal([1.997849464416504f, 1.6840718984603882f, 1.6623198986053467f, 1.5167853832244873f], _vae.LatentsStd);
        Assert.Equal(8, _vae.Config.SpatialFactor);
        Assert.Equal(4, _vae.Config.TemporalFactor);
    }
}
