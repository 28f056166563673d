using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace Sora.Kernels.Gpu;

/// <summary>
/// ILGPU opens the unversioned driver names (libcuda.so, libOpenCL.so) only; many Linux machines have just the
/// versioned ones a driver installs (libcuda.so.1, libOpenCL.so.1 without the -dev package). When the runtime
/// fails to find an unversioned name, this falls back to the versioned library.
/// </summary>
internal static class NativeDrivers
{
    private static int _registered;

    /// <summary>Base name (no "lib", no ".so") → the versioned library; ILGPU asks for e.g. "OpenCL".</summary>
    private static readonly Dictionary<string, string> Versioned = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cuda"] = "libcuda.so.1",
        ["OpenCL"] = "libOpenCL.so.1",
    };

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1 || !OperatingSystem.IsLinux()) return;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += Resolve;
    }

    private static IntPtr Resolve(Assembly assembly, string name)
    {
        string file = Path.GetFileName(name);
        int so = file.IndexOf(".so", StringComparison.Ordinal);
        if (so >= 0) file = file[..so];
        if (file.StartsWith("lib", StringComparison.Ordinal)) file = file[3..];
        return Versioned.TryGetValue(file, out var versioned) && NativeLibrary.TryLoad(versioned, out var handle) ? handle : IntPtr.Zero;
    }
}
