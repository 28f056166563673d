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
