using Sora.Runtime;

namespace Sora.Native.Loading;

/// <summary>The error for a model folder that does not fit the architecture: names the file and the tensor or key.</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Binds a tensor source's tensors (a safetensors checkpoint, or any other <see cref="ITensorSource"/>) to a model by
/// exact name and shape, moving each to the backend once.
/// Every name must be taken exactly once: <see cref="EnsureAllBound"/> reports tensors the model did not use.
/// Weights keep their stored dtype (bf16 stays bf16).
/// </summary>
public sealed class WeightSet : IDisposable
{
    private readonly ITensorSource _checkpoint;
    private readonly IBackend _backend;
    private readonly HashSet<string> _bound = new(StringComparer.Ordinal);
    private readonly List<Tensor> _owned = new();

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
        if (!_checkpoint.Contains(name))
            throw new ModelLoadException($"{_checkpoint.Source}: missing tensor '{name}' (expected shape [{string.Join(", ", shape)}])");
        var stored = _checkpoint.Describe(name).Shape;
        if (!stored.SequenceEqual(shape))
            throw new ModelLoadException($"{_checkpoint.FileOf(name)}: tensor '{name}' has shape [{string.Join(", ", stored)}], expected [{string.Join(", ", shape)}]");
        if (!_bound.Add(name))
            throw new ModelLoadException($"{_checkpoint.Source}: tensor '{name}' bound twice");
        var host = _checkpoint.Get(name);
        if (_backend.Device.Kind == "cpu") return host; // the CPU backend computes on the mapped file directly
        var device = _backend.ToDevice(host);
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

    /// <summary>Frees the device copies (not the mapped file).</summary>
    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }
}
