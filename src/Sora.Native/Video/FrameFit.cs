using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Sora.Native.Video;

/// <summary>Fitting an image or clip prompt to the generated size, as Wan2.2's own i2v code (wan/textimage2video.py) does.</summary>
public static class FrameFit
{
    /// <summary>
    /// Scales every frame by s = max(W/w, H/h) to round(w·s) × round(h·s) (round half to even, as Python's round)
    /// with a Lanczos-3 filter (ImageSharp's, widened when shrinking, like PIL's LANCZOS that Wan2.2 uses), clamps to
    /// [0, 1], then keeps the centred W×H window starting at ((round(w·s) − W) div 2, (round(h·s) − H) div 2). The
    /// aspect ratio is kept and nothing is padded. A video already W×H is returned as it is (the same object).
    /// </summary>
    public static VideoFrames ResizeCenterCrop(VideoFrames video, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(video);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (video.Width == width && video.Height == height) return video;

        double scale = Math.Max((double)width / video.Width, (double)height / video.Height);
        // Python's round(), which Wan2.2 uses; max() guards the side that the scale was taken from against w·(W/w) = W − ε.
        int scaledW = Math.Max(width, (int)Math.Round(video.Width * scale, MidpointRounding.ToEven));
        int scaledH = Math.Max(height, (int)Math.Round(video.Height * scale, MidpointRounding.ToEven));
        int left = (scaledW - width) / 2, top = (scaledH - height) / 2;

        var rgb = new float[(long)video.Frames * height * width * 3];
        var pixels = new RgbaVector[video.Width * video.Height];
        var fitted = new RgbaVector[width * height];
        for (int f = 0; f < video.Frames; f++)
        {
            var src = video.Rgb.AsSpan(f * video.FrameValues, video.FrameValues);
            for (int p = 0; p < pixels.Length; p++) pixels[p] = new RgbaVector(src[3 * p], src[3 * p + 1], src[3 * p + 2]);
            using var image = Image.LoadPixelData<RgbaVector>(pixels, video.Width, video.Height);
            image.Mutate(x => x
                .Resize(new ResizeOptions { Size = new Size(scaledW, scaledH), Sampler = KnownResamplers.Lanczos3, Mode = ResizeMode.Stretch })
                .Crop(new Rectangle(left, top, width, height)));
            image.Frames.RootFrame.CopyPixelDataTo(fitted);
            var dst = rgb.AsSpan(f * width * height * 3, width * height * 3);
            for (int p = 0; p < fitted.Length; p++)
            {
                // Lanczos rings past the input's range at sharp edges; PIL's 8-bit output clips the same way.
                dst[3 * p] = Math.Clamp(fitted[p].R, 0f, 1f);
                dst[3 * p + 1] = Math.Clamp(fitted[p].G, 0f, 1f);
                dst[3 * p + 2] = Math.Clamp(fitted[p].B, 0f, 1f);
            }
        }
        return new VideoFrames(video.Frames, height, width, rgb);
    }

    /// <summary>
    /// Wan2.2's best_output_size (wan/utils/utils.py): the (width, height) for an image of
    /// <paramref name="imageWidth"/>×<paramref name="imageHeight"/> within <paramref name="expectedArea"/> pixels, multiples of
    /// (<paramref name="multipleW"/>, <paramref name="multipleH"/>), whose aspect ratio is closest to the image's. With
    /// r = w/h, ow = √(A·r), oh = A/ow, it rounds width first — ow₁ = ⌊ow/dw⌋·dw, oh₁ = ⌊(A/ow₁)/dh⌋·dh — and height
    /// first — oh₂ = ⌊oh/dh⌋·dh, ow₂ = ⌊(A/oh₂)/dw⌋·dw — and keeps the one with the smaller max(r/r', r'/r), the
    /// second on a tie. Floors are Python's float floor division, so the result is Wan2.2's to the last pixel.
    /// </summary>
    public static (int Width, int Height) BestOutputSize(int imageWidth, int imageHeight, long expectedArea, int multipleW, int multipleH)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(imageWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(imageHeight, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedArea, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(multipleW, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(multipleH, 1);
        double area = expectedArea, dw = multipleW, dh = multipleH;
        double ratio = (double)imageWidth / imageHeight;
        double ow = Math.Sqrt(area * ratio), oh = area / ow;

        double ow1 = FloorDiv(ow, dw) * dw;
        if (ow1 == 0) throw TooExtreme(imageWidth, imageHeight, expectedArea, multipleW, multipleH);
        double oh1 = FloorDiv(area / ow1, dh) * dh;
        double oh2 = FloorDiv(oh, dh) * dh;
        if (oh2 == 0 || oh1 == 0) throw TooExtreme(imageWidth, imageHeight, expectedArea, multipleW, multipleH);
        double ow2 = FloorDiv(area / oh2, dw) * dw;
        if (ow2 == 0) throw TooExtreme(imageWidth, imageHeight, expectedArea, multipleW, multipleH);

        double ratio1 = ow1 / oh1, ratio2 = ow2 / oh2;
        return Math.Max(ratio / ratio1, ratio1 / ratio) < Math.Max(ratio / ratio2, ratio2 / ratio)
            ? ((int)ow1, (int)oh1)
            : ((int)ow2, (int)oh2);
    }

    private static ArgumentException TooExtreme(int w, int h, long area, int dw, int dh)
        => new($"a {w}x{h} image is too narrow or too wide for {area} pixels in multiples of {dw}x{dh}: one side would be 0");

    /// <summary>Python's float a // b for positive operands: (a − fmod(a, b))/b, floored, corrected up when off by more than ½.</summary>
    private static double FloorDiv(double a, double b)
    {
        double div = (a - a % b) / b;
        double floor = Math.Floor(div);
        return div - floor > 0.5 ? floor + 1 : floor;
    }
}
