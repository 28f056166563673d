using Sora.Bench;

if (args is ["--check-shapes", string path])
    return WanBenchShapeCheck.Run(path);
if (args is ["--profile", string which])
    return OpProfile.Run(which);
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
