using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Sora.Runtime;

namespace Sora.Kernels.Gpu;

public sealed unsafe partial class IlgpuBackend
{
    /// <summary>
    /// Copies between host and device or within the device, any strides, dtype converted. Same-dtype contiguous
    /// copies move raw bytes; everything else goes through the strided conversion kernel on the device.
    /// </summary>
    public void Copy(Tensor src, Tensor dst)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(dst);
        if (!src.Shape.AsSpan().SequenceEqual(dst.Shape))
            throw new ArgumentException($"Copy needs equal shapes: src {src.ShapeString}, dst {dst.ShapeString}", nameof(dst));
        if (src.Storage is not HostStorage) Storage(src, nameof(src));
        if (dst.Storage is not HostStorage) Storage(dst, nameof(dst));
        if (src.ElementCount == 0) return;
        bool raw = src.DType == dst.DType && src.IsContiguous && dst.IsContiguous;
        switch (src.Storage, dst.Storage)
        {
            case (HostStorage, HostStorage):
                HostCopy(src, dst);
                break;
            case (HostStorage hs, IlgpuStorage ds):
                if (raw)
                {
                    RawUpload(hs, src.Offset, ds, dst.Offset, src.ElementCount);
                    break;
                }
                {
                    // Stage as contiguous host data of the source dtype, then convert and scatter on the device.
                    using var staged = Allocate(src.DType, src.Shape);
                    using var hostContiguous = src.IsContiguous ? null : Tensor.ZerosHost(src.DType, src.Shape);
                    if (hostContiguous is not null) HostCopy(src, hostContiguous);
                    var from = hostContiguous ?? src;
                    RawUpload((HostStorage)from.Storage, from.Offset, (IlgpuStorage)staged.Storage, 0, src.ElementCount);
                    DeviceCopy(staged, dst);
                }
                break;
            case (IlgpuStorage ss, HostStorage hd):
                if (raw)
                {
                    RawDownload(ss, src.Offset, hd, dst.Offset, src.ElementCount);
                    break;
                }
                {
                    using var staged = Allocate(dst.DType, dst.Shape);
                    DeviceCopy(src, staged);
                    if (dst.IsContiguous)
                    {
                        RawDownload((IlgpuStorage)staged.Storage, 0, hd, dst.Offset, src.ElementCount);
                    }
                    else
                    {
                        using var host = Tensor.ZerosHost(dst.DType, dst.Shape);
                        RawDownload((IlgpuStorage)staged.Storage, 0, (HostStorage)host.Storage, 0, src.ElementCount);
                        HostCopy(host, dst);
                    }
                }
                break;
            default:
                DeviceCopy(src, dst);
                break;
        }
    }

    private void RawUpload(HostStorage host, long hostOffset, IlgpuStorage device, long deviceOffset, long count)
    {
        int size = DTypes.SizeOf(host.DType);
        long bytes = count * size;
        var target = (ArrayView1D<byte, Stride1D.Dense>)device.View<byte>().SubView(deviceOffset * size, bytes);
        target.CopyFromCPU(ref Unsafe.AsRef<byte>((byte*)host.Pointer + hostOffset * size), bytes);
        // OpenCL enqueues the write without blocking: the host memory (often freed right after ToDevice)
        // must stay valid until the queue has consumed it.
        Accelerator.Synchronize();
    }

    private void RawDownload(IlgpuStorage device, long deviceOffset, HostStorage host, long hostOffset, long count)
    {
        int size = DTypes.SizeOf(host.DType);
        long bytes = count * size;
        var source = (ArrayView1D<byte, Stride1D.Dense>)device.View<byte>().SubView(deviceOffset * size, bytes);
        source.CopyToCPU(ref Unsafe.AsRef<byte>((byte*)host.Pointer + hostOffset * size), bytes);
        Accelerator.Synchronize();
    }

    /// <summary>Host to host, any strides and dtypes (float32 carries every F16/BF16 value exactly).</summary>
    private static void HostCopy(Tensor src, Tensor dst)
    {
        float[] values = src.ToFloatArray();
        var d = (HostStorage)dst.Storage;
        if (dst.IsContiguous)
        {
            HostData.WriteFloats(d, dst.Offset, values);
            return;
        }
        var index = new int[dst.Rank];
        var one = new float[1];
        for (long i = 0; i < values.Length; i++)
        {
            long off = dst.Offset;
            for (int a = 0; a < dst.Rank; a++) off += index[a] * dst.Strides[a];
            one[0] = values[i];
            HostData.WriteFloats(d, off, one);
            for (int a = dst.Rank - 1; a >= 0; a--)
            {
                if (++index[a] < dst.Shape[a]) break;
                index[a] = 0;
            }
        }
    }

    /// <summary>Device to device through the strided conversion kernel.</summary>
    private void DeviceCopy(Tensor src, Tensor dst)
    {
        var ss = Storage(src, nameof(src));
        var ds = Storage(dst, nameof(dst));
        var n = Elements(src.ElementCount, "Copy");
        var from = new StridedLayout(src.Shape, src.Strides, src.Offset);
        var to = new StridedLayout(dst.Shape, dst.Strides, dst.Offset);
        switch (src.DType)
        {
            case DType.F32: CopyTo(n, new F32Values(ss.View<float>()), from, ds, dst.DType, to); break;
            case DType.F16: CopyTo(n, new F16Values(ss.View<ushort>()), from, ds, dst.DType, to); break;
            case DType.BF16: CopyTo(n, new Bf16Values(ss.View<ushort>()), from, ds, dst.DType, to); break;
            default: throw new NotSupportedException(src.DType.ToString());
        }
    }

    private void CopyTo<TR>(Index1D n, TR src, StridedLayout from, IlgpuStorage dst, DType dtype, StridedLayout to)
        where TR : struct, IReadFloat
    {
        switch (dtype)
        {
            case DType.F32: CopyKernel<TR, F32Values>()(n, src, from, new F32Values(dst.View<float>()), to); break;
            case DType.F16: CopyKernel<TR, F16Values>()(n, src, from, new F16Values(dst.View<ushort>()), to); break;
            case DType.BF16: CopyKernel<TR, Bf16Values>()(n, src, from, new Bf16Values(dst.View<ushort>()), to); break;
            default: throw new NotSupportedException(dtype.ToString());
        }
    }

    private Action<Index1D, TR, StridedLayout, TW, StridedLayout> CopyKernel<TR, TW>()
        where TR : struct, IReadFloat where TW : struct, IWriteFloat =>
        Kernel("copy", () => Accelerator.LoadAutoGroupedStreamKernel<Index1D, TR, StridedLayout, TW, StridedLayout>(ElementwiseKernels.Copy));
}
