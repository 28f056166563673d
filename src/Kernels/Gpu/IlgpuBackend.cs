using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

/// <summary>
/// The ILGPU backend: one kernel source for CUDA, OpenCL and ILGPU's CPU accelerator. Tensors live in pooled
/// device buffers (<see cref="IlgpuStorage"/>); every op launches on the accelerator's default stream, so ops
/// are ordered and a buffer returned to the pool can be reused by the next op. Kernels are compiled once per
/// type instantiation and cached. Each op family lives in its own partial file.
/// </summary>
public sealed unsafe partial class IlgpuBackend : IBackend
{
    private readonly Context? _ownedContext;
    private readonly Dictionary<(string, Type), Delegate> _kernels = new();
    private readonly DevicePool _pool;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _dummy;
    private bool _disposed;

    /// <summary>
    /// Wraps an accelerator; <paramref name="ownedContext"/> (if given) is disposed with the backend.
    /// <paramref name="index"/> numbers devices of one kind in <see cref="DeviceInfo.Id"/> ("cuda:0").
    /// </summary>
    public IlgpuBackend(Accelerator accelerator, IlgpuKernelOptions? options = null, Context? ownedContext = null, int index = 0)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        Accelerator = accelerator;
        _ownedContext = ownedContext;
        Options = options ?? IlgpuKernelOptions.For(accelerator);
        Options.Validate(accelerator);
        string kind = KindOf(accelerator.AcceleratorType);
        string id = kind == "ilgpu-cpu" ? kind : $"{kind}:{index}";
        Device = new DeviceInfo(id, accelerator.Name, kind, MemoryOf(accelerator.Device));
        _pool = new DevicePool(this, accelerator);
        _dummy = accelerator.Allocate1D<float>(1);
    }

    public Accelerator Accelerator { get; }

    public IlgpuKernelOptions Options { get; }

    public DeviceInfo Device { get; }

    /// <summary>A backend on ILGPU's CPU accelerator (for tests; slow). Default kind: 16 threads per group.</summary>
    public static IlgpuBackend CreateCpu(CPUDeviceKind kind = CPUDeviceKind.Default, IlgpuKernelOptions? options = null)
    {
        var context = CreateContext(b => b.CPU(kind));
        return new IlgpuBackend(context.GetCPUDevice(0).CreateAccelerator(context), options, context);
    }

    /// <summary>A backend on CUDA device <paramref name="index"/>.</summary>
    public static IlgpuBackend CreateCuda(int index = 0, IlgpuKernelOptions? options = null)
    {
        var context = CreateContext(b => b.Cuda());
        try
        {
            var devices = context.GetCudaDevices();
            if (index < 0 || index >= devices.Count)
                throw new InvalidOperationException($"no CUDA device {index}: {devices.Count} found");
            return new IlgpuBackend(devices[index].CreateAccelerator(context), options, context, index);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>A backend on the <paramref name="index"/>-th OpenCL device ILGPU can use.</summary>
    public static IlgpuBackend CreateOpenCL(int index = 0, IlgpuKernelOptions? options = null)
    {
        var context = CreateContext(b => b.OpenCL());
        try
        {
            var devices = context.GetCLDevices();
            if (index < 0 || index >= devices.Count)
                throw new InvalidOperationException($"no usable OpenCL device {index}: {devices.Count} found");
            return new IlgpuBackend(devices[index].CreateAccelerator(context), options, context, index);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An explicit context (not Default(): that turns on assertions under a debugger) with ILGPU.Algorithms'
    /// math (XMath maps to fast device intrinsics).
    /// </summary>
    internal static Context CreateContext(Action<Context.Builder> devices)
    {
        NativeDrivers.Register();
        return Context.Create(b =>
        {
            devices(b);
            b.Optimize(OptimizationLevel.O1).EnableAlgorithms();
        });
    }

    /// <summary>Device memory; ILGPU's CPU device reports long.MaxValue, so report the host's memory instead.</summary>
    internal static long MemoryOf(ILGPU.Runtime.Device device) =>
        device.MemorySize == long.MaxValue ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes : device.MemorySize;

    internal static string KindOf(AcceleratorType type) => type switch
    {
        AcceleratorType.Cuda => "cuda",
        AcceleratorType.OpenCL => "opencl",
        AcceleratorType.CPU => "ilgpu-cpu",
        _ => type.ToString().ToLowerInvariant(),
    };

    // ---- kernels -------------------------------------------------------------------------------------

    /// <summary>The loaded kernel for (name, delegate type), compiled on first use.</summary>
    private T Kernel<T>(string name, Func<T> load) where T : Delegate
    {
        lock (_kernels)
        {
            if (!_kernels.TryGetValue((name, typeof(T)), out var kernel))
                _kernels[(name, typeof(T))] = kernel = load();
            return (T)kernel;
        }
    }

    /// <summary>A stand-in view for absent optional inputs (never read: the kernel's flag says so).</summary>
    private ArrayView<float> Dummy => _dummy.View;

    // ---- memory ------------------------------------------------------------------------------------

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
            n *= d;
        }
        return new Tensor(NewStorage(dtype, n), shape, ownsStorage: true);
    }

    private IlgpuStorage NewStorage(DType dtype, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long bytes = length * DTypes.SizeOf(dtype);
        return new IlgpuStorage(_pool, _pool.Rent(bytes), dtype, length, Device.Id);
    }

    public Tensor ToDevice(Tensor host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (host.Storage is not HostStorage)
            throw new ArgumentException($"host {host} is not a host tensor", nameof(host));
        var t = Allocate(host.DType, host.Shape);
        Copy(host, t);
        return t;
    }

    public Tensor ToHost(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var t = Tensor.ZerosHost(tensor.DType, tensor.Shape);
        Copy(tensor, t);
        return t;
    }

    public MemoryStats Memory => _pool.Stats;

    /// <summary>Bytes of freed buffers the pool keeps for reuse (device memory held beyond <see cref="Memory"/>).</summary>
    public long PooledBytes => _pool.CachedBytes;

    /// <summary>Gives the pool's cached buffers back to the device.</summary>
    public void TrimPool() => _pool.Trim();

    public void ResetPeakMemory() => _pool.ResetPeak();

    public void Synchronize() => Accelerator.Synchronize();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Accelerator.Synchronize();
        lock (_tileLists)
        {
            foreach (var t in _tileLists.Values) t.Dispose();
            _tileLists.Clear();
        }
        _pool.Dispose();
        _dummy.Dispose();
        Accelerator.Dispose();
        _ownedContext?.Dispose();
    }

    // ---- tensors → views ---------------------------------------------------------------------------

    /// <summary>The storage of a tensor that must live on this backend.</summary>
    internal IlgpuStorage Storage(Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.Storage is not IlgpuStorage s || s.Owner != this)
            throw new ArgumentException($"{name} {t} does not live on {Device.Id}: copy it with ToDevice first", name);
        if (s.IsDisposed) throw new ObjectDisposedException(name, $"{name} {t} uses a disposed storage");
        return s;
    }

    /// <summary>An F32 view starting at the tensor's first element (strides are the caller's business).</summary>
    internal ArrayView<float> F32(Tensor t, string name)
    {
        var s = Storage(t, name);
        if (t.DType != DType.F32) throw new ArgumentException($"{name} must be F32, got {t}", name);
        return s.View<float>().SubView(t.Offset);
    }

    internal ArrayView<float> F32Dense(Tensor t, string name)
    {
        var v = F32(t, name);
        RequireContiguous(t, name);
        return v;
    }

    internal static void RequireContiguous(Tensor t, string name)
    {
        if (!t.IsContiguous)
            throw new ArgumentException($"{name} {t} must be contiguous (strides [{string.Join(", ", t.Strides)}])", name);
    }

    internal static void RequireRank(Tensor t, string name, int rank)
    {
        if (t.Rank != rank) throw new ArgumentException($"{name} must have rank {rank}, got shape {t.ShapeString}", name);
    }

    internal static void RequireShape(Tensor t, string name, params int[] shape)
    {
        if (!t.Shape.AsSpan().SequenceEqual(shape))
            throw new ArgumentException($"{name} must have shape [{string.Join(", ", shape)}], got {t.ShapeString}", name);
    }

    internal static void RequireCount(Tensor t, string name, long count, string what)
    {
        if (t.ElementCount != count)
            throw new ArgumentException($"{name} {t.ShapeString} has {t.ElementCount} elements, expected {count} ({what})", name);
    }

    /// <summary>A rank-2 F32 matrix with dense columns and a row stride ≥ its width.</summary>
    internal ArrayView<float> Matrix(Tensor t, string name, int rows, int cols, out long rowStride)
    {
        var v = F32(t, name);
        RequireShape(t, name, rows, cols);
        if (cols > 1 && t.Strides[1] != 1)
            throw new ArgumentException($"{name} {t} must have dense rows (column stride 1), got strides [{string.Join(", ", t.Strides)}]", name);
        rowStride = rows > 1 ? t.Strides[0] : cols;
        if (rows > 1 && rowStride < cols)
            throw new ArgumentException($"{name} {t} has row stride {rowStride} smaller than its width {cols}", name);
        return v;
    }

    /// <summary>
    /// A small vector (bias, gate, norm weight) as a dense F32 view; other dtypes or strides are converted into
    /// a temporary owned by <paramref name="temps"/>.
    /// </summary>
    internal ArrayView<float> Vector(Tensor t, string name, int length, Temps temps)
    {
        Storage(t, name);
        if (t.ElementCount != length)
            throw new ArgumentException($"{name} must have {length} elements, got shape {t.ShapeString}", name);
        if (t.DType == DType.F32 && t.IsContiguous) return F32(t, name);
        var f = temps.Add(Allocate(DType.F32, t.Shape));
        Copy(t, f);
        return F32(f, name);
    }

    /// <summary>Uploads a small host array into a temporary device buffer.</summary>
    internal ArrayView<T> Upload<T>(ReadOnlySpan<T> data, Temps temps) where T : unmanaged
    {
        // Storage only sizes the bytes: 4-byte values (int ids, float parameters) ride in an F32-sized buffer.
        var dtype = sizeof(T) == 4 ? DType.F32 : throw new NotSupportedException(typeof(T).Name);
        var storage = temps.Add(NewStorage(dtype, Math.Max(1, data.Length)));
        if (data.Length > 0)
        {
            fixed (T* p = data)
                ((ArrayView1D<byte, Stride1D.Dense>)storage.View<byte>().SubView(0, (long)data.Length * sizeof(T)))
                    .CopyFromCPU(ref Unsafe.AsRef<byte>(p), (long)data.Length * sizeof(T));
            // The array is only pinned inside this block and OpenCL writes asynchronously: wait for the copy.
            Accelerator.Synchronize();
        }
        return storage.View<T>().SubView(0, Math.Max(1, data.Length));
    }

    /// <summary>Temporaries of one op, returned to the pool when the op has been enqueued (stream order keeps them safe).</summary>
    internal sealed class Temps : IDisposable
    {
        private readonly List<IDisposable> _items = new();

        public T Add<T>(T item) where T : IDisposable
        {
            _items.Add(item);
            return item;
        }

        public void Dispose()
        {
            foreach (var item in _items) item.Dispose();
            _items.Clear();
        }

        /// <summary>Takes ownership of the one item held (it is no longer disposed with these temps).</summary>
        public T Single<T>() where T : IDisposable
        {
            var item = (T)_items.Single();
            _items.Clear();
            return item;
        }
    }

    /// <summary>Launch size for one-thread-per-element kernels.</summary>
    internal static Index1D Elements(long n, string what)
    {
        if (n > int.MaxValue) throw new ArgumentException($"{what} has {n} elements; ILGPU kernels here index with 32-bit threads");
        return new Index1D((int)n);
    }
}
