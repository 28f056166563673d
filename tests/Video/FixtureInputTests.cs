using Sora.Native.Video;
using Sora.Runtime.Safetensors;
using Xunit;

namespace Sora.Tests.Video;

/// <summary>
/// The ti2v-small fixture's image.png and frames/*.png read and normalised as diffusers' pipelines read them
/// (VideoProcessor: b/255, then 2x − 1): our tensors must equal, bit for bit, the ones the reference pipelines recorded.
/// </summary>
public sealed class FixtureInputTests
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "ti2v-small");

    private static float[] Expected(string file, string tensor, int[] shape)
    {
        using var f = SafetensorsFile.Open(Path.Combine(Dir, file));
        var t = f.Get(tensor);
        Assert.Equal(shape, t.Shape);
        return t.ToFloatArray();
    }

    /// <summary>Bit-exact: the same b/255 and 2x − 1 in float32 as numpy and torch compute them.</summary>
    private static void AssertEqualToFixture(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        Assert.Contains(expected, v => v != 0);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                Assert.Fail($"value {i}: {actual[i]:R}, the fixture has {expected[i]:R}");
    }

    [Fact]
    public void ImagePngIsTheI2vCaseImageTensor()
    {
        var image = VideoInput.ReadImage(Path.Combine(Dir, "image.png"));
        Assert.Equal((1, 64, 96), (image.Frames, image.Height, image.Width));
        // Already the requested size, so fitting must change nothing at all.
        var fitted = FrameFit.ResizeCenterCrop(image, 96, 64);
        Assert.Equal(image.Rgb, fitted.Rgb);
        using var t = fitted.ToVaeInput(); // [3, 1, 64, 96]: the same order as the fixture's [1, 3, 64, 96]
        Assert.Equal([3, 1, 64, 96], t.Shape);
        AssertEqualToFixture(Expected("i2v_case.safetensors", "image", [1, 3, 64, 96]), t.ToFloatArray());
    }

    [Fact]
    public void FramesFolderIsTheV2vCaseVideoTensor()
    {
        var clip = VideoInput.ReadClip(Path.Combine(Dir, "frames"));
        Assert.Equal((9, 64, 96), (clip.Frames, clip.Height, clip.Width));
        using var t = clip.ToVaeInput();
        AssertEqualToFixture(Expected("v2v_case.safetensors", "video", [1, 3, 9, 64, 96]), t.ToFloatArray());
    }
}
