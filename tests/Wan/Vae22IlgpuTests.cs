using Xunit;
using Sora.Native.Wan;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Wan;

/// <summary>
/// The smallest Wan2.2 VAE cases on ILGPU's CPU accelerator (the kernels that run on CUDA and OpenCL), by
/// causality: the first latent frame decodes to the first frame of diffusers' video, and the first frame
/// alone encodes to the first latent frame of diffusers' mean and log-variance.
/// </summary>
public sealed class Vae22IlgpuTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void First_frame_decode_and_encode_match_diffusers_on_the_ilgpu_cpu_accelerator()
    {
        using var backend = Sora.Kernels.Gpu.IlgpuBackend.CreateCpu();
        using var vae = WanVae.Load(Fixture22VaeDir, backend);

        var (latents, latentShape) = FixtureTensorIn(Fixture22Dir, "vae22_decode_case.safetensors", "latents");
        var (expected, expectedShape) = FixtureTensorIn(Fixture22Dir, "vae22_decode_case.safetensors", "expected");
        using (var latent = ToBackend(backend, FirstFrame(latents, latentShape), [latentShape[0], 1, latentShape[2], latentShape[3]]))
        using (var video = vae.Decode(latent))
        {
            Assert.Equal([3, 1, expectedShape[2], expectedShape[3]], video.Shape);
            double error = RelativeError(Read(backend, video), FirstFrame(expected, expectedShape));
            output.WriteLine($"decode: relative error {error:E2}");
            Assert.True(error < 1e-4, $"decode relative error {error:E2}");
        }

        var (frames, frameShape) = FixtureTensorIn(Fixture22Dir, "vae22_encode_case.safetensors", "video");
        var (expectedMean, meanShape) = FixtureTensorIn(Fixture22Dir, "vae22_encode_case.safetensors", "expected_mean");
        var (expectedLogVar, _) = FixtureTensorIn(Fixture22Dir, "vae22_encode_case.safetensors", "expected_logvar");
        using var image = ToBackend(backend, FirstFrame(frames, frameShape), [3, 1, frameShape[2], frameShape[3]]);
        var (mean, logVar) = vae.Encode(image);
        using (mean)
        using (logVar)
        {
            double meanError = RelativeError(Read(backend, mean), FirstFrame(expectedMean, meanShape));
            double logVarError = RelativeError(Read(backend, logVar), FirstFrame(expectedLogVar, meanShape));
            output.WriteLine($"encode: relative error mean {meanError:E2}, logvar {logVarError:E2}");
            Assert.True(meanError < 1e-4, $"mean relative error {meanError:E2}");
            Assert.True(logVarError < 1e-4, $"logvar relative error {logVarError:E2}");
        }
    }

    /// <summary>Frame 0 of [C, T, H, W] as [C, 1, H, W] values.</summary>
    private static float[] FirstFrame(float[] data, int[] shape)
    {
        int c = shape[0], t = shape[1], plane = shape[2] * shape[3];
        var first = new float[c * plane];
        for (int i = 0; i < c; i++) Array.Copy(data, (long)i * t * plane, first, (long)i * plane, plane);
        return first;
    }
}
