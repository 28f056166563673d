using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Sora.Kernels.Cpu;
using Sora.Kernels.Gpu;
using Sora.Runtime;

namespace Sora.Kernels;

/// <summary>One device as <see cref="Backends.List"/> reports it; unusable ones say why.</summary>
public sealed record DeviceListing(string Id, string Name, string Kind, long MemoryBytes, bool Usable, string? SkipReason);

/// <summary>
/// Picks and lists compute devices. "auto" prefers CUDA, then OpenCL, then the managed CPU backend; "cuda",
/// "opencl" (optionally ":index"), "cpu" and "ilgpu-cpu" force one. Probing never throws for a missing GPU or
/// driver: the reason is reported instead.
/// </summary>
public static class Backends
{
    public static IReadOnlyList<string> DeviceNames { get; } = ["auto", "cuda", "opencl", "cpu", "ilgpu-cpu"];

    /// <summary>A backend for <paramref name="device"/> ("auto", "cuda[:i]", "opencl[:i]", "cpu", "ilgpu-cpu").</summary>
    public static IBackend Create(string device)
    {
        ArgumentNullException.ThrowIfNull(device);
        string name = device.Trim().ToLowerInvariant();
        int index = 0;
        int colon = name.IndexOf(':');
        if (colon >= 0)
        {
            if (!int.TryParse(name[(colon + 1)..], out index) || index < 0)
                throw new ArgumentException($"device '{device}': the index after ':' must be a non-negative integer", nameof(device));
            name = name[..colon];
            if (name is not ("cuda" or "opencl"))
                throw new ArgumentException($"device '{device}': only cuda and opencl take an index", nameof(device));
        }
        return name switch
        {
            "auto" => CreateAuto(),
            "cpu" => new CpuBackend(),
            "ilgpu-cpu" => IlgpuBackend.CreateCpu(),
            "cuda" => Forced("cuda", index, () => IlgpuBackend.CreateCuda(index)),
            "opencl" => Forced("opencl", index, () => IlgpuBackend.CreateOpenCL(index)),
            _ => throw new ArgumentException($"unknown device '{device}'; valid devices: {string.Join(", ", DeviceNames)} (cuda and opencl accept ':index')", nameof(device)),
        };
    }

    private static IBackend CreateAuto()
    {
        foreach (string kind in new[] { "cuda", "opencl" })
        {
            if (!List().Any(d => d.Kind == kind && d.Usable)) continue;
            try
            {
                return kind == "cuda" ? IlgpuBackend.CreateCuda() : IlgpuBackend.CreateOpenCL();
            }
            catch (Exception)
            {
                // A device that lists but fails to start falls through to the next choice, as if absent.
            }
        }
        return new CpuBackend();
    }

    /// <summary>A forced GPU: absent or unusable → an error that says why.</summary>
    private static IBackend Forced(string kind, int index, Func<IBackend> create)
    {
        var usable = List().Where(d => d.Kind == kind && d.Usable).ToList();
        if (index >= usable.Count)
        {
            var reasons = List().Where(d => d.Kind == kind && !d.Usable).Select(d => $"{d.Id} ({d.Name}): {d.SkipReason}").ToList();
            string why = reasons.Count > 0 ? string.Join("; ", reasons) : $"no {kind} device found";
            throw new InvalidOperationException($"device '{kind}:{index}' is not available ({usable.Count} usable {kind} device(s)): {why}");
        }
        return create();
    }

    /// <summary>Every device: the managed CPU backend, ILGPU's CPU accelerator, CUDA and OpenCL devices (with skip reasons).</summary>
    public static IReadOnlyList<DeviceListing> List()
    {
        NativeDrivers.Register();
        var list = new List<DeviceListing>();
        using (var cpu = new CpuBackend(1))
            list.Add(new DeviceListing(cpu.Device.Id, cpu.Device.Name, cpu.Device.Kind, cpu.Device.MemoryBytes, true, null));
        Probe(list, "ilgpu-cpu", ListIlgpuCpu);
        Probe(list, "cuda", ListCuda);
        Probe(list, "opencl", ListOpenCL);
        return list;
    }

    /// <summary>Runs one probe; any failure (missing native library, driver error) becomes an unusable entry.</summary>
    private static void Probe(List<DeviceListing> list, string kind, Action<List<DeviceListing>> probe)
    {
        try
        {
            probe(list);
        }
        catch (Exception e)
        {
            var inner = e is TypeInitializationException { InnerException: { } ie } ? ie : e;
            list.Add(new DeviceListing(kind, kind, kind, 0, false, $"{inner.GetType().Name}: {inner.Message}"));
        }
    }

    private static void ListIlgpuCpu(List<DeviceListing> list)
    {
        using var context = Context.Create(b => b.CPU(CPUDeviceKind.Default));
        var device = context.GetCPUDevice(0);
        list.Add(new DeviceListing("ilgpu-cpu", $"ILGPU CPU accelerator ({device.MaxNumThreadsPerGroup} threads per group)",
            "ilgpu-cpu", IlgpuBackend.MemoryOf(device), true, null));
    }

    private static void ListCuda(List<DeviceListing> list)
    {
        using var context = Context.Create(b => b.Cuda());
        var devices = context.GetCudaDevices();
        for (int i = 0; i < devices.Count; i++)
            list.Add(new DeviceListing($"cuda:{i}", devices[i].Name, "cuda", devices[i].MemorySize, true, null));
        if (devices.Count == 0)
            list.Add(new DeviceListing("cuda", "CUDA", "cuda", 0, false, CudaAbsentReason()));
    }

    private static string CudaAbsentReason()
    {
        string[] names = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : OperatingSystem.IsMacOS() ? ["libcuda.dylib"] : ["libcuda.so", "libcuda.so.1"];
        return CanLoad(names)
            ? "the CUDA driver loads but reports no device"
            : $"CUDA driver not found ({string.Join(", ", names)} cannot be loaded)";
    }

    private static bool CanLoad(string[] names)
    {
        foreach (string name in names)
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            NativeLibrary.Free(handle);
            return true;
        }
        return false;
    }

    private static void ListOpenCL(List<DeviceListing> list)
    {
        if (OperatingSystem.IsLinux() && !CanLoad(["libOpenCL.so", "libOpenCL.so.1"]))
        {
            list.Add(new DeviceListing("opencl", "OpenCL", "opencl", 0, false, "no OpenCL ICD loader (libOpenCL.so, libOpenCL.so.1) found"));
            return;
        }
        using var all = Context.Create(b => b.OpenCL(_ => true));
        using var compatible = Context.Create(b => b.OpenCL());
        var usable = new HashSet<IntPtr>();
        foreach (var d in compatible.GetCLDevices()) usable.Add(d.DeviceId);
        var devices = all.GetCLDevices();
        int index = 0;
        foreach (var d in devices)
        {
            string name = $"{d.Name} ({d.PlatformName}, {d.DeviceVersion})";
            if (usable.Contains(d.DeviceId))
            {
                list.Add(new DeviceListing($"opencl:{index++}", name, "opencl", d.MemorySize, true, null));
                continue;
            }
            string reason = d.Capabilities.GenericAddressSpace
                ? $"ILGPU does not support this device (OpenCL C {d.CVersion})"
                : CLCapabilityContext.GetNotSupportedGenericAddressSpaceException().Message;
            list.Add(new DeviceListing("opencl", name, "opencl", d.MemorySize, false, reason));
        }
        if (devices.Count == 0)
            list.Add(new DeviceListing("opencl", "OpenCL", "opencl", 0, false, "no OpenCL platform or device found"));
    }
}
