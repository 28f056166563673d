using System.CommandLine;
using Sora.Native.Text;

namespace Sora.Cli;

/// <summary><c>sora tokenize --model DIR "text"</c>: the umT5 sentencepiece ids of a text.</summary>
public static class TokenizeCommand
{
    public static Command Build(CliContext context)
    {
        var text = new Argument<string>("text") { Description = "The text to tokenize." };
        var model = Commands.ModelOption();
        var forModel = new Option<bool>("--for-model") { Description = "Append </s> and truncate to 512 ids, as the text encoder receives them." };
        var command = new Command("tokenize", "Show the token ids (and pieces) of a text under the model's tokenizer.") { text, model, forModel };
        command.SetAction(parse =>
        {
            var dir = ModelLocator.Component(ModelLocator.Resolve(parse.GetValue(model)), "tokenizer", "spiece.model", "tokenizer.json");
            var tokenizer = SentencePieceTokenizer.Load(dir);
            string input = parse.GetValue(text)!;
            int[] ids = parse.GetValue(forModel) ? tokenizer.EncodeForModel(input) : tokenizer.Encode(input);
            context.Out.WriteLine("ids: " + string.Join(' ', ids));
            context.Out.WriteLine("pieces: " + string.Join(' ', ids.Select(id => tokenizer.Model.Pieces[id].Piece)));
            context.Out.WriteLine($"count: {ids.Length}");
            return 0;
        });
        return command;
    }
}
