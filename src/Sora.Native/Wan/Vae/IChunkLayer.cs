using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// A layer of the chunked VAE: called once per chunk of frames in order, it returns a new tensor (the caller
/// owns it; the input stays the caller's). Layers that look back in time keep what they need from earlier
/// chunks; <see cref="Reset"/> forgets it before the next encode or decode.
/// </summary>
internal interface IChunkLayer
{
    Tensor Forward(Tensor x);
    void Reset();
}
