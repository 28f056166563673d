using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Sora.Native.Video;

/// <summary>
/// Reads image and clip prompts into <see cref="VideoFrames"/> (values b/255 of the 8-bit samples, as diffusers'
/// VideoProcessor and torchvision's to_tensor compute them). PNG, JPEG and GIF are decoded by ImageSharp, with
/// EXIF orientation applied and alpha dropped (as PIL's exif_transpose and convert("RGB") in diffusers' load_image);
/// .y4m by <see cref="Y4mReader"/>; .mp4 and other containers by ffmpeg (<see cref="FfmpegReader"/>). Every
/// failure is a <see cref="VideoInputException"/> naming the path.
/// </summary>
public static class VideoInput
{
    /// <summary>Widest and highest frame accepted: far beyond any video model, small enough that a lying header cannot ask for gigabytes.</summary>
    public const int MaxSide = 16384;
    /// <summary>Most pixels in one frame (8192², 64 Mi).</summary>
    public const long MaxFramePixels = 8192L * 8192;
    /// <summary>Most frames in one clip.</summary>
    public const int MaxFrames = 100_000;
    /// <summary>Most floats a whole clip may hold (one .NET array).</summary>
    public const long MaxValues = 0x7FFF_FFC7; // Array.MaxLength

    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// ImageSharp with plain managed buffers instead of its unmanaged pool: a decode's memory is then counted by the
    /// GC (and by the fuzz tests' allocation bound) and returned when the image is dropped.
    /// </summary>
    private static readonly Configuration Decoding = CreateDecoding();

    private static Configuration CreateDecoding()
    {
        var c = Configuration.Default.Clone();
        c.MemoryAllocator = new SimpleGcMemoryAllocator();
        return c;
    }

    /// <summary>One still image (PNG or JPEG; a GIF gives its first frame) as a 1-frame video.</summary>
    public static VideoFrames ReadImage(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (Directory.Exists(path)) throw new VideoInputException(path, "is a folder, not an image file");
        if (!ImageExtensions.Contains(ext) && ext != ".gif")
            throw new VideoInputException(path, $"unknown image extension '{ext}': give a .png, .jpg or .jpeg file");
        return Decode(path, maxFrames: 1);
    }

    /// <summary>
    /// Every frame of a clip: a folder of PNG/JPEG frames (ordered by file name, ordinal), a .y4m, an animated .gif,
    /// a still PNG/JPEG (one frame), or a container ffmpeg reads (.mp4, .mov, .mkv, .webm, .avi). All frames must
    /// have one size.
    /// </summary>
    public static VideoFrames ReadClip(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) return ReadFolder(path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ImageExtensions.Contains(ext)) return Decode(path, maxFrames: 1);
        if (ext == ".gif") return Decode(path, MaxFrames);
        if (ext == ".y4m") return Y4mReader.Read(path);
        if (FfmpegReader.Extensions.Contains(ext)) return FfmpegReader.Read(path);
        if (!File.Exists(path)) throw new VideoInputException(path, "no such file or folder");
        throw new VideoInputException(path, $"unknown clip extension '{ext}': give a folder of .png/.jpg frames, "
            + $".y4m, .gif, .png, .jpg or ({string.Join(", ", FfmpegReader.Extensions)} with ffmpeg installed)");
    }

    private static VideoFrames ReadFolder(string folder)
    {
        var files = Directory.EnumerateFiles(folder)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0) throw new VideoInputException(folder, "the folder holds no .png or .jpg frames");
        if (files.Length > MaxFrames) throw new VideoInputException(folder, $"{files.Length} frames, more than the {MaxFrames} a clip may have");

        var first = Decode(files[0], maxFrames: 1);
        CheckClipSize(folder, files.Length, first.Height, first.Width);
        var rgb = new float[(long)files.Length * first.FrameValues];
        first.Rgb.CopyTo(rgb, 0);
        for (int f = 1; f < files.Length; f++)
        {
            var frame = Decode(files[f], maxFrames: 1);
            if (frame.Width != first.Width || frame.Height != first.Height)
                throw new VideoInputException(files[f], $"frame is {frame.Width}x{frame.Height} but {Path.GetFileName(files[0])} is {first.Width}x{first.Height}; every frame of a clip must have one size");
            frame.Rgb.CopyTo(rgb, (long)f * first.FrameValues);
        }
        return new VideoFrames(files.Length, first.Height, first.Width, rgb);
    }

    /// <summary>Throws unless <paramref name="frames"/> frames of <paramref name="width"/>×<paramref name="height"/> are within the limits.</summary>
    internal static void CheckClipSize(string path, long frames, long height, long width)
    {
        if (width < 1 || height < 1 || width > MaxSide || height > MaxSide || width * height > MaxFramePixels)
            throw new VideoInputException(path, $"frames of {width}x{height} are outside 1..{MaxSide} per side and {MaxFramePixels} pixels");
        if (frames > MaxFrames || frames * height * width * 3 > MaxValues)
            throw new VideoInputException(path, $"{frames} frames of {width}x{height} are more than one clip may hold ({MaxFrames} frames, {MaxValues} values)");
    }

    /// <summary>Decodes up to <paramref name="maxFrames"/> frames of an image file with ImageSharp (a clip longer than that is refused, a still image keeps its first frame).</summary>
    private static VideoFrames Decode(string path, int maxFrames)
    {
        try
        {
            using var stream = File.OpenRead(path);
            // The header first: a lying size is refused before the decoder allocates for it.
            var info = Image.Identify(Decoding, stream, out var format);
            if (info is null || format is null) throw new VideoInputException(path, "not a PNG, JPEG or GIF image (unknown format)");
            if (format is not PngFormat and not JpegFormat and not GifFormat)
                throw new VideoInputException(path, $"{format.Name} images are not read; give PNG, JPEG or GIF");
            CheckClipSize(path, 1, info.Height, info.Width);
            long pixels = (long)info.Width * info.Height, most = Math.Max(FreePixels, stream.Length * MostPixelsPerByte(format));
            if (pixels > most)
                throw new VideoInputException(path, $"a {stream.Length}-byte {format.Name} cannot hold {info.Width}x{info.Height} pixels (corrupt header?)");
            long budget = Math.Min(maxFrames, MaxValues / (3L * info.Width * info.Height));
            stream.Position = 0;
            // One frame past the budget tells a clip that is too long from one that fits exactly.
            var decoder = format is GifFormat ? new GifDecoder { MaxFrames = (uint)(maxFrames == 1 ? 1 : budget + 1) } : null;
            using var image = decoder is null ? Image.Load<Rgb24>(Decoding, stream) : Image.Load<Rgb24>(Decoding, stream, decoder);
            if (image.Frames.Count > budget)
                throw new VideoInputException(path, $"more than {budget} frames of {image.Width}x{image.Height}, more than one clip may hold");
            image.Mutate(x => x.AutoOrient());
            return ToFrames(image);
        }
        catch (VideoInputException) { throw; }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VideoInputException(path, "no such file", e);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
        {
            // ImageSharp reports corrupt data with several exception types, and a truncated stream with others.
            throw new VideoInputException(path, $"cannot decode the image ({e.Message})", e);
        }
    }

    /// <summary>Pixels any image may have whatever its file size.</summary>
    private const long FreePixels = 1 << 20;

    /// <summary>
    /// More pixels per file byte than a format can encode: deflate inflates at most 1032:1 and a PNG pixel can be
    /// 1 bit (8256); a JPEG spends at least one bit on every 8×8 block (512, doubled for margin); GIF's 12-bit LZW codes
    /// stand for at most 4096 pixels each (2731, rounded up). A header claiming more is corrupt, and is refused before
    /// the decoder allocates the image.
    /// </summary>
    private static long MostPixelsPerByte(IImageFormat format) => format switch
    {
        PngFormat => 8256,
        JpegFormat => 1024,
        _ => 4096,
    };

    private static VideoFrames ToFrames(Image<Rgb24> image)
    {
        int frames = image.Frames.Count, w = image.Width, h = image.Height;
        var rgb = new float[(long)frames * h * w * 3];
        var bytes = new byte[h * w * 3];
        for (int f = 0; f < frames; f++)
        {
            image.Frames[f].CopyPixelDataTo(bytes);
            var dst = rgb.AsSpan(f * bytes.Length, bytes.Length);
            for (int i = 0; i < bytes.Length; i++) dst[i] = bytes[i] / 255f;
        }
        return new VideoFrames(frames, h, w, rgb);
    }
}
