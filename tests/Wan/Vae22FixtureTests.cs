using Xunit;
using Sora.Native.Wan;
using Sora.Runtime;
using Sora.Tests.Text;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// Parity of <see cref="WanVae"/> with diffusers' AutoencoderKLWan in its Wan2.2 form (is_residual, patch_size 2)
/// on the ti2v-small fixtures, on the CPU backend with every allocation NaN-poisoned (an element the VAE never
/// writes fails the comparison).
/// </summary>
public sealed class Vae22FixtureTests : IDisposable
{
    private const string DecodeCase = "vae22_decode_case.safetensors";
    private const string EncodeCase = "vae22_encode_case.safetensors";

    private readonly IBackend _backend = new PoisoningBackend(NewCpuBackend());
    private readonly WanVae _vae;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public Vae22FixtureTests(Xunit.Abstractions.ITestOutputHelper output)
    {
        _output = output;
        _vae = WanVae.Load(Fixture22VaeDir, _backend);
    }

    public void Dispose()
    {
        _vae.Dispose();
        _backend.Dispose();
    }

    [Fact]
    public void Decode_matches_diffusers()
    {
        var (latents, latentShape) = FixtureTensorIn(Fixture22Dir, DecodeCase, "latents");
        var (expected, expectedShape) = FixtureTensorIn(Fixture22Dir, DecodeCase, "expected");
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
        var (video, videoShape) = FixtureTensorIn(Fixture22Dir, EncodeCase, "video");
        var (expectedMean, meanShape) = FixtureTensorIn(Fixture22Dir, EncodeCase, "expected_mean");
        var (expectedLogVar, _) = FixtureTensorIn(Fixture22Dir, EncodeCase, "expected_logvar");
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
    /// Decoding the first k latent frames gives the first 4(k−1)+1 frames of decoding all of them, and a second
    /// decode gives the first again: the first-chunk state of the shortcuts and upsamplers is reset between calls.
    /// </summary>
    [Fact]
    public void Decoding_a_prefix_of_latent_frames_gives_a_prefix_of_the_video()
    {
        var (latents, shape) = FixtureTensorIn(Fixture22Dir, DecodeCase, "latents");
        using var all = ToBackend(_backend, latents, shape);
        using var full = _vae.Decode(all);
        var fullFrames = Read(_backend, full);
        int frameSize = full.Dim(2) * full.Dim(3);
        for (int k = 1; k < shape[1]; k++)
        {
            using var part = _vae.Decode(all.Slice(1, 0, k));
            int frames = 4 * (k - 1) + 1;
            Assert.Equal([3, frames, full.Dim(2), full.Dim(3)], part.Shape);
            Assert.True(RelativeError(Read(_backend, part), Prefix(fullFrames, 3, frames * frameSize)) < 1e-6, $"prefix of {k} latent frames differs");
        }
        using var again = _vae.Decode(all);
        Assert.True(RelativeError(Read(_backend, again), fullFrames) < 1e-6, "a second decode differs from the first");
    }

    /// <summary>Encoding the first frame alone (an image, as image-to-video does) gives the first latent frame of the clip's encoding.</summary>
    [Fact]
    public void Encoding_the_first_frame_alone_gives_the_first_latent_frame()
    {
        var (video, shape) = FixtureTensorIn(Fixture22Dir, EncodeCase, "video");
        using var all = ToBackend(_backend, video, shape);
        var (fullMean, fullLogVar) = _vae.Encode(all);
        var (mean, logVar) = _vae.Encode(all.Slice(1, 0, 1));
        using (fullMean)
        using (fullLogVar)
        using (mean)
        using (logVar)
        {
            int z = fullMean.Dim(0), frame = fullMean.Dim(2) * fullMean.Dim(3);
            Assert.Equal([z, 1, fullMean.Dim(2), fullMean.Dim(3)], mean.Shape);
            Assert.True(RelativeError(Read(_backend, mean), Prefix(Read(_backend, fullMean), z, frame)) < 1e-6, "mean of the first frame");
            Assert.True(RelativeError(Read(_backend, logVar), Prefix(Read(_backend, fullLogVar), z, frame)) < 1e-6, "logvar of the first frame");
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
    public void Bad_arguments_name_the_argument()
    {
        using var oddSize = _backend.Allocate(DType.F32, 3, 1, 56, 96); // a multiple of 8, not of 16
        Assert.Contains("multiples of 16", Assert.Throws<ArgumentException>(() => _vae.Encode(oddSize)).Message);
        using var patchChannels = _backend.Allocate(DType.F32, 12, 1, 64, 96); // the encoder's channels, not the video's
        Assert.Contains("video", Assert.Throws<ArgumentException>(() => _vae.Encode(patchChannels)).Message);
        using var wrongZ = _backend.Allocate(DType.F32, 12, 1, 4, 6);
        Assert.Contains("latents", Assert.Throws<ArgumentException>(() => _vae.Decode(wrongZ)).Message);
    }

    [Fact]
    public void Exposes_the_wan22_factors_and_channels()
    {
        Assert.True(_vae.Config.IsResidual);
        Assert.Equal(2, _vae.Config.PatchSize);
        Assert.Equal(16, _vae.Config.SpatialFactor);
        Assert.Equal(4, _vae.Config.TemporalFactor);
        Assert.Equal(12, _vae.Config.InChannels);
        Assert.Equal(3, _vae.Config.PixelInChannels);
        Assert.Equal(3, _vae.Config.PixelOutChannels);
        Assert.Equal(4, _vae.ZDim);
    }
}
