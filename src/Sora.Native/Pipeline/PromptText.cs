using System.Net;
using System.Text.RegularExpressions;

namespace Sora.Native.Pipeline;

/// <summary>Prompt text handling of diffusers' WanPipeline.</summary>
public static partial class PromptText
{
    /// <summary>
    /// Wan2.1's negative prompt (<c>wan_shared_cfg.sample_neg_prompt</c> of the Wan2.1 repository), used when none is
    /// given. In English: garish colours, overexposed, static, blurred details, subtitles, style, artwork, painting,
    /// frame, still, overall grey, worst quality, low quality, JPEG artefacts, ugly, mutilated, extra fingers, badly
    /// drawn hands, badly drawn face, deformed, disfigured, malformed limbs, fused fingers, motionless frame, cluttered
    /// background, three legs, crowded background, walking backwards.
    /// </summary>
    public const string DefaultNegativePrompt =
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，" +
        "多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

    /// <summary>
    /// diffusers' <c>prompt_clean</c>: HTML-unescape twice, strip, collapse whitespace runs to one space, strip.
    /// (diffusers first applies ftfy.fix_text when installed; that mojibake repair is not reproduced — plain text is unchanged by it.)
    /// </summary>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string unescaped = WebUtility.HtmlDecode(WebUtility.HtmlDecode(text)).Trim();
        return Whitespace().Replace(unescaped, " ").Trim();
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
