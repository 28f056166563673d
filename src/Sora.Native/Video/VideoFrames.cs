namespace Sora.Native.Video;

/// <summary>
/// Decoded video frames: <see cref="Rgb"/> is [Frames, Height, Width, 3] in row-major order, values in [0, 1]
/// (values outside are clamped when written).
/// </summary>
public sealed record VideoFrames
{
    public VideoFrames(int Frames, int Height, int Width, float[] Rgb)
    {
        ArgumentNullException.ThrowIfNull(Rgb);
        if (Frames < 1) throw new ArgumentOutOfRangeException(nameof(Frames), Frames, "a video needs at least one frame");
        if (Height < 1) throw new ArgumentOutOfRangeException(nameof(Height), Height, "height must be positive");
        if (Width < 1) throw new ArgumentOutOfRangeException(nameof(Width), Width, "width must be positive");
        long expected = (long)Frames * Height * Width * 3;
        if (Rgb.LongLength != expected)
            throw new ArgumentException($"Rgb holds {Rgb.LongLength} values but [{Frames}, {Height}, {Width}, 3] needs {expected}", nameof(Rgb));
        this.Frames = Frames;
        this.Height = Height;
        this.Width = Width;
        this.Rgb = Rgb;
    }

    public int Frames { get; }
    public int Height { get; }
    public int Width { get; }
    public float[] Rgb { get; }

    public int FrameValues => Height * Width * 3;

    /// <summary>One frame as interleaved 8-bit RGB (rounded, clamped to [0, 255]).</summary>
    public void FrameBytes(int frame, Span<byte> rgb24)
    {
        if ((uint)frame >= (uint)Frames) throw new ArgumentOutOfRangeException(nameof(frame), frame, $"the video has {Frames} frames");
        if (rgb24.Length != FrameValues) throw new ArgumentException($"buffer holds {rgb24.Length} bytes, a frame needs {FrameValues}", nameof(rgb24));
        var src = Rgb.AsSpan(frame * FrameValues, FrameValues);
        for (int i = 0; i < src.Length; i++) rgb24[i] = ToByte(src[i]);
    }

    public byte[] FrameBytes(int frame)
    {
        var b = new byte[FrameValues];
        FrameBytes(frame, b);
        return b;
    }

    /// <summary>[0, 1] → [0, 255], rounded to nearest (in double, so 0.9f · 255 = 229.49… stays 229); NaN becomes 0.</summary>
    public static byte ToByte(float v)
    {
        double s = v * 255.0 + 0.5;
        if (!(s > 0.0)) return 0;
        return s >= 255.0 ? (byte)255 : (byte)s;
    }
}
