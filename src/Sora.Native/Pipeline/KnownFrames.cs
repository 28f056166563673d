using Sora.Runtime;

namespace Sora.Native.Pipeline;

/// <summary>
/// Known latent frames at the start of a clip (image to video: the image; extension: the clip's last frames), with
/// Wan2.2 TI2V's rule: the mask m is 0 on known latent frames and 1 elsewhere; before every transformer call the
/// input is (1−m)·known + m·latents and every token's timestep is m·t, so known tokens see timestep 0; the
/// scheduler steps the unblended latents; after the loop the latents are blended once more.
/// </summary>
internal sealed class KnownFrames : IDisposable
{
    private readonly IBackend _backend;
    private readonly Tensor _latents;

    /// <param name="backend">The backend the latents live on.</param>
    /// <param name="latents">Normalised latents [C, K, h, w] on the backend (owned: freed with this).</param>
    public KnownFrames(IBackend backend, Tensor latents)
    {
        _backend = backend;
        _latents = latents;
    }

    /// <summary>K, the number of known latent frames.</summary>
    public int Count => _latents.Dim(1);

    /// <summary>(1−m)·known + m·x in place on x [C, T, h, w]: m is 0 or 1, so the first K frames are overwritten.</summary>
    public void BlendInto(Tensor x) => _backend.Copy(_latents, x.Slice(1, 0, Count));

    /// <summary>
    /// m·t per token in the transformer's order (post-patch frame, row, column): 0 for tokens whose latent frames are
    /// known, t elsewhere. A token covers latent frames [f·pt, (f+1)·pt); it is known when its first frame is.
    /// </summary>
    public float[] TokenTimesteps(float timestep, int tokenFrames, int tokensPerFrame, int patchT)
    {
        var result = new float[(long)tokenFrames * tokensPerFrame];
        for (int f = 0; f < tokenFrames; f++)
            result.AsSpan(f * tokensPerFrame, tokensPerFrame).Fill(f * patchT < Count ? 0f : timestep);
        return result;
    }

    public void Dispose() => _latents.Dispose();
}
