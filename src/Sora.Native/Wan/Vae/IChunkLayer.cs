using Sora.Runtime;

namespace Sora.Native.Wan.Vae;

/// <summary>
/// A layer of the streamed VAE: called on consecutive pieces of one sequence in order, it returns a new tensor
/// (the caller owns it; the input stays the caller's), or null when it has nothing to give yet (a temporal
/// downsampler waiting for the second frame of a pair). Layers that look back in time keep what they need
/// from earlier pieces; <see cref="Reset"/> forgets it before the next encode or decode.
/// </summary>
/// <remarks>
/// A decode may stream several clips of one size side by side: after Reset(clips) every piece is [C, clips, H, W],
/// one frame of each clip (clip b at index b of axis 1), and each layer keeps every clip's history apart. A layer
/// giving k frames per clip gives [C, k·clips, H, W], frame-major (frame j of clip b at index j·clips + b).
/// </remarks>
internal interface IChunkLayer
{
    Tensor? Forward(Tensor x);
    /// <summary>Forgets the history of earlier pieces; the next pieces hold <paramref name="clips"/> clips side by side.</summary>
    void Reset(int clips);
}

/// <summary>
/// Runs a sequence of layers depth first, one frame at a time: whenever a layer returns several frames, each
/// is taken through the rest before the next. Every layer is causal with its own cache (or works per frame),
/// so this equals running whole chunks, while each stage holds one frame of activations (plus its caches).
/// With several clips side by side (<see cref="Reset"/>) a "frame" is one frame of every clip, [C, clips, H, W].
/// </summary>
internal sealed class FrameStream(IBackend backend, IReadOnlyList<IChunkLayer> layers)
{
    private int _clips = 1;

    /// <summary>
    /// Takes <paramref name="x"/> (owned: freed here) through the layers; <paramref name="emit"/> receives each
    /// finished frame [C, clips, H, W], owned by the stream and valid only during the call (it may modify it).
    /// </summary>
    public void Run(Tensor x, Action<Tensor> emit) => Run(0, x, emit);

    private void Run(int layer, Tensor x, Action<Tensor> emit)
    {
        if (layer == layers.Count)
        {
            using (x) emit(x);
            return;
        }
        Tensor? output;
        using (x) output = layers[layer].Forward(x);
        if (output is null) return;
        if (output.Dim(1) == _clips)
        {
            Run(layer + 1, output, emit);
            return;
        }
        using (output)
            for (int f = 0; f < output.Dim(1) / _clips; f++) Run(layer + 1, Frame(output, f), emit);
    }

    /// <summary>A new contiguous copy of frame f of every clip: frames f·clips .. f·clips + clips − 1 of x [C, T, H, W].</summary>
    private Tensor Frame(Tensor x, int f)
    {
        var frame = backend.Allocate(DType.F32, x.Dim(0), _clips, x.Dim(2), x.Dim(3));
        backend.Copy(x.Slice(1, f * _clips, _clips), frame);
        return frame;
    }

    /// <summary>Forgets every layer's history; the next pieces hold <paramref name="clips"/> clips side by side.</summary>
    public void Reset(int clips)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(clips, 1);
        _clips = clips;
        foreach (var layer in layers) layer.Reset(clips);
    }
}
