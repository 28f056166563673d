using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Sora.Cli.Serve;

/// <summary>
/// A request body as named fields, read from a multipart form (what the openai clients post) or a JSON object (a
/// nested object <c>{"video": {"id": …}}</c> becomes the field <c>video[id]</c>, as the clients spell it in a form).
/// </summary>
public sealed class RequestFields
{
    private readonly Dictionary<string, string> _values;
    private readonly Dictionary<string, IFormFile> _files;

    private RequestFields(Dictionary<string, string> values, Dictionary<string, IFormFile> files)
    {
        _values = values;
        _files = files;
    }

    public static async Task<RequestFields> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.HasFormContentType)
        {
            var form = await ReadFormAsync(request, ct);
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in form)
            {
                if (value.Count != 1) throw ApiError.BadRequest($"Field '{key}' is given {value.Count} times.", key);
                values[key] = value[0] ?? "";
            }
            var files = new Dictionary<string, IFormFile>(StringComparer.Ordinal);
            foreach (var file in form.Files)
            {
                if (!files.TryAdd(file.Name, file) || values.ContainsKey(file.Name))
                    throw ApiError.BadRequest($"Field '{file.Name}' is given more than once.", file.Name);
            }
            return new RequestFields(values, files);
        }
        if (request.ContentType is { } type && type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            JsonDocument doc;
            try
            {
                doc = await JsonDocument.ParseAsync(request.Body, default, ct);
            }
            catch (JsonException e)
            {
                throw ApiError.BadRequest($"The body is not valid JSON ({e.Message}).", null, "invalid_json");
            }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiError.BadRequest("The JSON body must be an object.", null, "invalid_json");
                var values = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Value.ValueKind == JsonValueKind.Object)
                        foreach (var inner in p.Value.EnumerateObject()) Add(values, $"{p.Name}[{inner.Name}]", inner.Value);
                    else
                        Add(values, p.Name, p.Value);
                }
                return new RequestFields(values, []);
            }
        }
        throw ApiError.BadRequest("Send the fields as multipart/form-data or application/json.", null, "unsupported_content_type");
    }

    /// <summary>The form; its reader's limits are a 413 and a malformed form a 400 (a body over the size limit is Kestrel's 413).</summary>
    private static async Task<IFormCollection> ReadFormAsync(HttpRequest request, CancellationToken ct)
    {
        try
        {
            return await request.ReadFormAsync(ct);
        }
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            throw ApiError.TooLarge($"The form is too large: {e.Message}");
        }
        catch (Exception e) when (e is InvalidDataException or IOException && e is not BadHttpRequestException && !ct.IsCancellationRequested)
        {
            throw ApiError.BadRequest($"The multipart form could not be read: {e.Message}", null, "invalid_form");
        }
    }

    private static void Add(Dictionary<string, string> values, string name, JsonElement value)
    {
        string? text = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            JsonValueKind.Null => null,
            _ => throw ApiError.BadRequest($"Field '{name}' must be a string or a number.", name),
        };
        if (text is null) return;
        if (!values.TryAdd(name, text)) throw ApiError.BadRequest($"Field '{name}' is given more than once.", name);
    }

    /// <summary>Refuses any field not in <paramref name="known"/> (a misspelt option must not be silently ignored).</summary>
    public void OnlyKnown(params string[] known)
    {
        foreach (var name in _values.Keys.Concat(_files.Keys))
            if (!known.Contains(name)) throw ApiError.BadRequest($"Unknown parameter: '{name}'.", name, "unknown_parameter");
    }

    public bool Has(string name) => _values.ContainsKey(name) || _files.ContainsKey(name);

    public IFormFile? File(string name) => _files.GetValueOrDefault(name);

    public string? String(string name)
    {
        if (_files.ContainsKey(name)) throw ApiError.BadRequest($"Field '{name}' must be text, not a file.", name);
        return _values.GetValueOrDefault(name);
    }

    public string Required(string name)
        => String(name) is { Length: > 0 } s ? s : throw ApiError.BadRequest($"Missing required parameter: '{name}'.", name, "missing_required_parameter");

    public int? Int(string name, int min, int max)
    {
        if (String(name) is not { } s) return null;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw ApiError.BadRequest($"'{name}' must be an integer from {min} to {max}, got '{Clip(s)}'.", name);
        return v;
    }

    public long? Long(string name)
    {
        if (String(name) is not { } s) return null;
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v))
            throw ApiError.BadRequest($"'{name}' must be an integer, got '{Clip(s)}'.", name);
        return v;
    }

    public double? Double(string name, double min, double max)
    {
        if (String(name) is not { } s) return null;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v) || v < min || v > max)
            throw ApiError.BadRequest($"'{name}' must be a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}, got '{Clip(s)}'.", name);
        return v;
    }

    /// <summary>A value quoted back in an error, cut short so a huge field does not make a huge error.</summary>
    public static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
