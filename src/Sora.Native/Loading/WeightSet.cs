using Sora.Runtime;
using Sora.Runtime.Gguf;

namespace Sora.Native.Loading;

/// <summary>The error for a model folder that does not fit the architecture: names the file and the tensor or key.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Binds a tensor source's tensors (a safetensors checkpoint, or any other <see cref="ITensorSource"/>) to a model by
/// exact name and shape, moving each to the backend once.
/// Every name must be taken exactly once: <see cref="EnsureAllBound"/> reports tensors the model did not use.
/// Weights keep their stored form: bf16 stays bf16, and <see cref="TakeWeight"/> hands fp8 and ggml-block weights to
/// the kernels as they are stored.
/// </summary>
public sealed class WeightSet : IDisposable
{
    private readonly ITensorSource _checkpoint;
    private readonly IBackend _backend;
    private readonly HashSet<string> _bound = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _owned = new();

    public WeightSet(ITensorSource checkpoint, IBackend backend)
    {
        _checkpoint = checkpoint;
        _backend = backend;
    }

    public string Source => _checkpoint.Source;

    public bool Contains(string name) => _checkpoint.Contains(name);

    /// <summary>The tensor called <paramref name="name"/>, which must have exactly <paramref name="shape"/>.</summary>
    public Tensor Take(string name, params int[] shape)
    {
        Bind(name, shape);
        return OnBackend(_checkpoint.Get(name));
    }

    /// <summary>
    /// The weight called <paramref name="name"/> [shape[0] = Out, rest multiplied = In] as the handle its stored form calls
    /// for: ggml blocks (an <see cref="IQuantizedTensorSource"/> holding it encoded) → <see cref="BlockWeight"/>; F8_E4M3 or
    /// F8_E5M2 codes → <see cref="Fp8Weight"/>, scaled by ComfyUI's <c>&lt;layer&gt;.scale_weight</c> when that tensor is
    /// beside it (bound with it); F32/F16/BF16 → <see cref="DenseWeight"/>. Adapters an <see cref="IAdapterSource"/> carries for
    /// it become LoRA side paths. Nothing is expanded: the kernels read the stored form.
    /// </summary>
    public Weight TakeWeight(string name, params int[] shape)
    {
        if (shape.Length == 0) throw new ArgumentException("a weight needs a shape [Out, ...]", nameof(shape));
        Bind(name, shape);
        int outFeatures = shape[0];
        int inFeatures = checked((int)(shape.Skip(1).Aggregate(1L, (a, b) => a * b)));
        Weight weight;
        if (_checkpoint is IQuantizedTensorSource quantized && quantized.TryGetBlocks(name, out var type, out var blocks))
        {
            long need = GgmlTypes.IsSupported(type) ? GgmlTypes.ByteCount(type, (long)outFeatures * inFeatures) : -1;
            if (need != blocks.Length)
                throw new ModelLoadException($"{_checkpoint.FileOf(name)}: tensor '{name}' holds {blocks.Length} bytes of {GgmlTypes.Name(type)}, [{string.Join(", ", shape)}] takes {(need < 0 ? "whole blocks" : need + " bytes")}");
            var bytes = _backend.Upload(blocks);
            _owned.Add(bytes);
            weight = new BlockWeight(type, bytes, outFeatures, inFeatures);
        }
        else if (_checkpoint.Describe(name).DType is DType.F8E4M3 or DType.F8E5M2)
            weight = new Fp8Weight(OnBackend(_checkpoint.Get(name)), ScaleOf(name));
        else
            weight = new DenseWeight(OnBackend(_checkpoint.Get(name)));
        if (_checkpoint is IAdapterSource adapters)
            foreach (var a in adapters.AdaptersOf(name))
            {
                if (a.Down.Rank != 2 || a.Up.Rank != 2 || a.Down.Dim(1) != inFeatures || a.Up.Dim(0) != outFeatures || a.Up.Dim(1) != a.Down.Dim(0))
                    throw new ModelLoadException($"{_checkpoint.Source}: LoRA on '{name}' has down {a.Down.ShapeString} and up {a.Up.ShapeString}, the weight is [{outFeatures}, {inFeatures}]: need [r, {inFeatures}] and [{outFeatures}, r]");
                weight = new LoraWeight(weight, OnBackend(a.Down), OnBackend(a.Up), a.Scale);
            }
        return weight;
    }

    /// <summary>The per-tensor scale of a scaled-fp8 weight ("x.weight" → "x.scale_weight", one element), or 1 when there is none.</summary>
    private float ScaleOf(string name)
    {
        string scaleName = (name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : name) + ".scale_weight";
        if (!_checkpoint.Contains(scaleName)) return 1f;
        var stored = _checkpoint.Describe(scaleName).Shape;
        if (stored.Aggregate(1L, (a, b) => a * b) != 1)
            throw new ModelLoadException($"{_checkpoint.FileOf(scaleName)}: tensor '{scaleName}' has shape [{string.Join(", ", stored)}], expected one scale for '{name}'");
        Bind(scaleName, stored);
        float scale = _checkpoint.Get(scaleName).ToFloatArray()[0];
        if (!float.IsFinite(scale))
            throw new ModelLoadException($"{_checkpoint.FileOf(scaleName)}: tensor '{scaleName}' is {scale}, not a finite scale");
        return scale;
    }

    /// <summary>Checks that <paramref name="name"/> exists with exactly <paramref name="shape"/> and marks it bound (once).</summary>
    private void Bind(string name, int[] shape)
    {
        if (!_checkpoint.Contains(name))
            throw new ModelLoadException($"{_checkpoint.Source}: missing tensor '{name}' (expected shape [{string.Join(", ", shape)}])");
        var stored = _checkpoint.Describe(name).Shape;
        if (!stored.SequenceEqual(shape))
            throw new ModelLoadException($"{_checkpoint.FileOf(name)}: tensor '{name}' has shape [{string.Join(", ", stored)}], expected [{string.Join(", ", shape)}]");
        if (!_bound.Add(name))
            throw new ModelLoadException($"{_checkpoint.Source}: tensor '{name}' bound twice");
    }

    /// <summary>A host tensor of the source on the backend: as it is on the CPU (which computes on the mapped file directly), else a device copy.</summary>
    private Tensor OnBackend(Tensor host)
    {
        if (_backend.Device.Kind == "cpu") return host;
        var device = _backend.ToDevice(host);
        _owned.Add(device);
        return device;
    }

    /// <summary>
    /// Like <see cref="Take"/>, converted to F32 once at bind when stored narrower: for the few small tensors that
    /// elementwise ops read as F32 (the modulation tables, which the Wan reference adds in float32).
    /// </summary>
    public Tensor TakeF32(string name, params int[] shape)
    {
        var stored = Take(name, shape);
        if (stored.DType == DType.F32) return stored;
        float[] values;
        if (stored.IsHost) values = stored.ToFloatArray();
        else
        {
            using var host = _backend.ToHost(stored);
            values = host.ToFloatArray();
        }
        using var f32 = Tensor.FromArray(values, shape);
        var device = _backend.ToDevice(f32);
        _owned.Add(device);
        return device;
    }

    /// <summary>Throws naming every tensor of the checkpoint that no module bound.</summary>
    public void EnsureAllBound()
    {
        var unused = _checkpoint.Names.Where(n => !_bound.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (unused.Count > 0)
            throw new ModelLoadException($"{_checkpoint.Source}: unexpected tensor(s) not used by the model: {string.Join(", ", unused.Take(10))}{(unused.Count > 10 ? $" and {unused.Count - 10} more" : "")}");
    }

    /// <summary>Frees the device copies and uploaded blocks (not the mapped file).</summary>
    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }
}
