using Sora.Native.Loading;
using Sora.Native.Pipeline;
using Xunit;
using static Sora.Tests.Wan.VaeTestSupport;

namespace Sora.Tests.Loading;

/// <summary>WanPipelineBuilder: a pipeline from separate files, parts left out taken from a model folder.</summary>
public sealed class PipelineBuilderTests
{
    private static string ModelFolder => Path.Combine(FixtureDir, "model");

    private static WanPipelineBuilder SingleFiles => new()
    {
        Transformer = SingleFileFixtureTests.File("wan2.1_t2v_tiny_fp16.safetensors"),
        TransformerConfig = SingleFileFixtureTests.Config,
        Vae = SingleFileFixtureTests.File("wan_2.1_vae_tiny_bf16.safetensors"),
    };

    [Fact]
    public void Single_files_give_the_geometry_and_wan21_defaults_without_reading_weights()
    {
        var geometry = SingleFiles.Geometry();
        Assert.Equal((4, 8, 4, 16), (geometry.TemporalFactor, geometry.SpatialFactor, geometry.LatentChannels, geometry.SizeMultiple));
        Assert.Equal(GenerationDefaults.Wan21, SingleFiles.Defaults());
    }

    [Fact]
    public void Without_a_text_encoder_a_text_prompt_asks_for_one()
    {
        using var backend = NewCpuBackend();
        using var pipeline = SingleFiles.Build(backend);
        Assert.Null(pipeline.Folder);
        var options = new GenerationOptions { Prompt = "a cat", Frames = 5, Height = 16, Width = 16, Steps = 1, Seed = 1, OutputType = OutputType.Latent };
        var ex = Assert.Throws<ModelLoadException>(() => pipeline.Generate(options));
        Assert.Contains("text encoder", ex.Message);
    }

    [Fact]
    public void Parts_left_out_come_from_the_model_folder()
    {
        // The single-file transformer has the folder model's sizes, so the folder's VAE, text encoder, tokenizer and
        // scheduler work with it: a text prompt runs through all of them.
        using var backend = NewCpuBackend();
        using var pipeline = (SingleFiles with { Vae = null, Model = ModelFolder }).Build(backend);
        Assert.NotNull(pipeline.Folder);
        var options = new GenerationOptions { Prompt = "a red circle", Frames = 5, Height = 16, Width = 16, Steps = 2, Seed = 3, OutputType = OutputType.Latent };
        var result = pipeline.Generate(options);
        using var latents = result.Latents!;
        Assert.Equal([4, 2, 2, 2], latents.Shape);
        Assert.All(latents.ToFloatArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void A_text_encoder_file_and_a_tokenizer_file_encode_like_the_folder()
    {
        // The folder's text encoder as one file (config inferred) and its spiece.model given directly: the same
        // prompt gives the same latents as the folder's own text_encoder/ and tokenizer/.
        var options = new GenerationOptions { Prompt = "a red circle", Frames = 5, Height = 16, Width = 16, Steps = 2, Seed = 3, OutputType = OutputType.Latent };
        var fromFolder = SingleFiles with { Vae = null, Model = ModelFolder };
        var fromFiles = fromFolder with
        {
            TextEncoder = Path.Combine(ModelFolder, "text_encoder", "model.safetensors"),
            Tokenizer = Path.Combine(ModelFolder, "tokenizer", "spiece.model"),
        };
        float[] Run(WanPipelineBuilder builder)
        {
            using var backend = NewCpuBackend();
            using var pipeline = builder.Build(backend);
            using var latents = pipeline.Generate(options).Latents!;
            return latents.ToFloatArray();
        }
        Assert.Equal(Run(fromFolder), Run(fromFiles));
    }

    [Fact]
    public void A_model_folder_downloaded_without_its_transformer_supplies_the_other_parts()
    {
        using var dir = new TempDir();
        foreach (string part in new[] { "vae", "scheduler", "text_encoder", "tokenizer" })
        {
            Directory.CreateDirectory(Path.Combine(dir.Path, part));
            foreach (string f in Directory.GetFiles(Path.Combine(ModelFolder, part))) File.Copy(f, Path.Combine(dir.Path, part, Path.GetFileName(f)));
        }
        File.Copy(Path.Combine(ModelFolder, "model_index.json"), Path.Combine(dir.Path, "model_index.json"));
        using var backend = NewCpuBackend();
        using var pipeline = (SingleFiles with { Vae = null, Model = dir.Path }).Build(backend);
        Assert.Equal(4, pipeline.Vae.ZDim);
        Assert.Throws<ModelLoadException>(() => Sora.Native.Loading.ModelFolder.Open(dir.Path)); // a folder model still needs it
    }

    [Fact]
    public void Missing_parts_and_bad_settings_name_the_setting()
    {
        using var backend = NewCpuBackend();
        Assert.Equal("Transformer", Assert.ThrowsAny<ArgumentException>(() => new WanPipelineBuilder { Vae = SingleFiles.Vae }.Build(backend)).ParamName);
        Assert.Equal("Vae", Assert.ThrowsAny<ArgumentException>(() => (SingleFiles with { Vae = null }).Build(backend)).ParamName);
        Assert.Equal("FlowShift", Assert.ThrowsAny<ArgumentException>(() => (SingleFiles with { FlowShift = 0 }).Build(backend)).ParamName);
    }
}

/// <summary>Parts that arrive as streams, spooled to files the loaders map.</summary>
public sealed class SpooledFileTests
{
    [Fact]
    public void A_streamed_transformer_and_vae_build_a_pipeline_that_equals_the_files()
    {
        var options = new GenerationOptions
        {
            Prompt = "", Frames = 5, Height = 16, Width = 16, Steps = 1, Guidance = 1, OutputType = OutputType.Latent,
            PromptEmbeds = Sora.Runtime.Tensor.FromArray(new float[512 * 24], [512, 24]),
            Latents = Sora.Runtime.Tensor.FromArray(Enumerable.Range(0, 4 * 2 * 2 * 2).Select(i => MathF.Sin(i)).ToArray(), [4, 2, 2, 2]),
        };
        var files = new WanPipelineBuilder
        {
            Transformer = SingleFileFixtureTests.File("wan2.1_t2v_tiny_fp16.safetensors"),
            TransformerConfig = SingleFileFixtureTests.Config,
            Vae = SingleFileFixtureTests.File("wan_2.1_vae_tiny_bf16.safetensors"),
        };
        float[] Run(WanPipelineBuilder builder)
        {
            using var backend = NewCpuBackend();
            using var pipeline = builder.Build(backend);
            using var latents = pipeline.Generate(options).Latents!;
            return latents.ToFloatArray();
        }
        string spooledPath;
        float[] streamed;
        using (var transformer = File.OpenRead(files.Transformer))
        using (var vae = File.OpenRead(files.Vae))
        using (var t = SpooledFile.From(transformer))
        using (var v = SpooledFile.From(vae))
        {
            spooledPath = t.Path;
            streamed = Run(files with { Transformer = t.Path, Vae = v.Path });
        }
        Assert.Equal(Run(files), streamed);
        Assert.False(File.Exists(spooledPath));
        Assert.Throws<ArgumentException>(() => SpooledFile.From(Stream.Null, ".bin"));
    }
}
