using Sora.Bench;

if (args is ["--check-shapes", string path])
    return WanBenchShapeCheck.Run(path);
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
