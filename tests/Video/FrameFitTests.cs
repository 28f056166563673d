using Sora.Native.Video;
using Xunit;

namespace Sora.Tests.Video;

public sealed class FrameFitTests
{
    /// <summary>A grey frame (or frames) with a red w×h box whose top-left pixel is (x, y).</summary>
    private static VideoFrames Marker(int frames, int height, int width, int x, int y, int w, int h)
    {
        var rgb = new float[frames * height * width * 3];
        for (int f = 0; f < frames; f++)
            for (int py = 0; py < height; py++)
                for (int px = 0; px < width; px++)
                {
                    int p = ((f * height + py) * width + px) * 3;
                    bool inside = px >= x && px < x + w && py >= y && py < y + h;
                    rgb[p] = inside ? 1f : 0.5f;
                    rgb[p + 1] = rgb[p + 2] = inside ? 0f : 0.5f;
                }
        return new VideoFrames(frames, height, width, rgb);
    }

    /// <summary>Centroid (x, y) and spread (σx, σy) of "redness" R − G over a frame, in pixel-index coordinates.</summary>
    private static (double X, double Y, double Sx, double Sy) Redness(VideoFrames v, int frame)
    {
        double m = 0, mx = 0, my = 0, mxx = 0, myy = 0;
        for (int y = 0; y < v.Height; y++)
            for (int x = 0; x < v.Width; x++)
            {
                int p = ((frame * v.Height + y) * v.Width + x) * 3;
                double r = Math.Max(0, v.Rgb[p] - v.Rgb[p + 1]);
                m += r; mx += r * x; my += r * y; mxx += r * x * x; myy += r * y * y;
            }
        double cx = mx / m, cy = my / m;
        return (cx, cy, Math.Sqrt(mxx / m - cx * cx), Math.Sqrt(myy / m - cy * cy));
    }

    [Fact]
    public void SameSizeIsReturnedUntouched()
    {
        var v = TestVideos.Smooth(2, 16, 24);
        Assert.Same(v, FrameFit.ResizeCenterCrop(v, 24, 16));
    }

    [Fact]
    public void WideImageShrinksToTheHeightAndKeepsItsCentre()
    {
        // 200×100 to 64×64: s = max(64/200, 64/100) = 0.64 → 128×64, then columns 32..95 kept.
        // A 20×20 box centred on the image (continuous centre 100, 50) lands at 100·0.64 − 32 = 32, 32,
        // i.e. pixel-index centroid 31.5, and stays square (20·0.64 = 12.8 pixels a side).
        var v = Marker(2, 100, 200, 90, 40, 20, 20);
        var fit = FrameFit.ResizeCenterCrop(v, 64, 64);
        Assert.Equal((2, 64, 64), (fit.Frames, fit.Height, fit.Width));
        Assert.All(fit.Rgb, x => Assert.InRange(x, 0f, 1f));
        for (int f = 0; f < 2; f++)
        {
            var (x, y, sx, sy) = Redness(fit, f);
            Assert.InRange(x, 31.5 - 0.05, 31.5 + 0.05);
            Assert.InRange(y, 31.5 - 0.05, 31.5 + 0.05);
            // A uniform box of side L has σ = L/√12: 12.8/√12 = 3.70, equal in x and y (aspect ratio kept).
            Assert.InRange(sx, 3.70 - 0.25, 3.70 + 0.25);
            Assert.InRange(sy / sx, 0.98, 1.02);
        }
    }

    [Fact]
    public void OffCentreMarkerMovesByTheScaleAndTheCrop()
    {
        // 200×100 to 64×64 as above; a 10×10 box at continuous centre (125, 30) → (125·0.64 − 32, 30·0.64) = (48, 19.2).
        var fit = FrameFit.ResizeCenterCrop(Marker(1, 100, 200, 120, 25, 10, 10), 64, 64);
        var (x, y, _, _) = Redness(fit, 0);
        Assert.InRange(x, 48 - 0.5 - 0.1, 48 - 0.5 + 0.1);
        Assert.InRange(y, 19.2 - 0.5 - 0.1, 19.2 - 0.5 + 0.1);
    }

    [Fact]
    public void TallImageGrowsToTheWidthAndCropsRows()
    {
        // 30×50 to 96×64: s = max(96/30, 64/50) = 3.2 → 96×160, rows 48..111 kept.
        // A box centred at (15, 25) → (48, 80 − 48 = 32); its 6-pixel side becomes 19.2.
        var fit = FrameFit.ResizeCenterCrop(Marker(1, 50, 30, 12, 22, 6, 6), 96, 64);
        Assert.Equal((1, 64, 96), (fit.Frames, fit.Height, fit.Width));
        var (x, y, sx, sy) = Redness(fit, 0);
        Assert.InRange(x, 47.5 - 0.1, 47.5 + 0.1);
        Assert.InRange(y, 31.5 - 0.1, 31.5 + 0.1);
        Assert.InRange(sx, 19.2 / Math.Sqrt(12) - 0.3, 19.2 / Math.Sqrt(12) + 0.3);
        Assert.InRange(sy / sx, 0.98, 1.02);
    }

    [Fact]
    public void LinearRampIsResampledToTheMappedCoordinates()
    {
        // Lanczos reproduces a linear function away from the borders: value at output pixel x must be the input ramp
        // evaluated at the source coordinate (x + ½ + left)/s − ½. 120×80 → 48×48: s = 0.6 → 72×48, left 12.
        int w = 120, h = 80;
        var rgb = new float[h * w * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int p = (y * w + x) * 3;
                rgb[p] = 0.1f + 0.8f * x / (w - 1);
                rgb[p + 1] = 0.1f + 0.8f * y / (h - 1);
                rgb[p + 2] = 0.5f;
            }
        var fit = FrameFit.ResizeCenterCrop(new VideoFrames(1, h, w, rgb), 48, 48);
        double err = 0, norm = 0;
        for (int y = 6; y < 42; y++)
            for (int x = 0; x < 48; x++)
            {
                int p = (y * 48 + x) * 3;
                double sx = (x + 0.5 + 12) / 0.6 - 0.5, sy = (y + 0.5) / 0.6 - 0.5;
                double[] expected = [0.1 + 0.8 * sx / (w - 1), 0.1 + 0.8 * sy / (h - 1), 0.5];
                for (int c = 0; c < 3; c++)
                {
                    err += Math.Pow(fit.Rgb[p + c] - expected[c], 2);
                    norm += expected[c] * expected[c];
                }
            }
        Assert.InRange(Math.Sqrt(err / norm), 0, 1e-4);
    }

    [Fact]
    public void CropOnlyShiftsThePixels()
    {
        // 100×64 to 96×64: s = 1, so no resampling error beyond float rounding; columns 2..97 kept.
        var v = TestVideos.Smooth(2, 64, 100);
        var fit = FrameFit.ResizeCenterCrop(v, 96, 64);
        for (int f = 0; f < 2; f++)
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 96; x++)
                    for (int c = 0; c < 3; c++)
                        Assert.Equal(v.Rgb[((f * 64 + y) * 100 + x + 2) * 3 + c], fit.Rgb[((f * 64 + y) * 96 + x) * 3 + c], 1e-5);
    }

    [Theory]
    // Expected values from Wan2.2's wan/utils/utils.py best_output_size(w, h, dw, dh, expected_area), run in
    // python3 here; argument order there is (w, h, dw, dh, area).
    [InlineData(1280, 704, 901120, 32, 32, 1280, 704)]
    [InlineData(1920, 1080, 901120, 32, 32, 1248, 704)]
    [InlineData(1080, 1920, 901120, 32, 32, 704, 1248)]
    [InlineData(1024, 1024, 901120, 32, 32, 960, 928)]
    [InlineData(4032, 3024, 901120, 32, 32, 1088, 800)]
    [InlineData(640, 480, 399360, 16, 16, 720, 544)]
    [InlineData(96, 64, 6144, 32, 32, 96, 64)]
    [InlineData(300, 200, 6144, 32, 32, 96, 64)]
    [InlineData(500, 100, 901120, 32, 32, 2112, 416)]
    [InlineData(333, 777, 399360, 16, 32, 416, 960)]
    [InlineData(1, 1, 901120, 32, 32, 960, 928)]
    [InlineData(2000, 10, 901120, 32, 32, 13408, 64)]
    public void BestOutputSizeIsWan22s(int w, int h, long area, int dw, int dh, int expectedW, int expectedH)
        => Assert.Equal((expectedW, expectedH), FrameFit.BestOutputSize(w, h, area, dw, dh));

    [Fact]
    public void BestOutputSizeRefusesWhatWan22DividesByZeroOn()
    {
        // Python raises ZeroDivisionError here: the image is too wide for a single 32-pixel row within the area.
        var e = Assert.Throws<ArgumentException>(() => FrameFit.BestOutputSize(5000, 1, 901120, 32, 32));
        Assert.Contains("5000x1", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => FrameFit.BestOutputSize(0, 10, 901120, 32, 32));
        Assert.Throws<ArgumentOutOfRangeException>(() => FrameFit.BestOutputSize(10, 10, 901120, 0, 32));
    }
}
