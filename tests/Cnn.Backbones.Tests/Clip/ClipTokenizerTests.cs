using System.Text.Json;
using Cnn.Tests.Shared;
using Cnn.Backbones.Clip;

namespace Cnn.Backbones.Tests.Clip;

/// <summary><see cref="ClipTokenizer"/> against OpenCLIP's <c>get_tokenizer('ViT-B-32')</c>, id for id, at test time.</summary>
[TestClass]
public sealed class ClipTokenizerTests
{
    // ImageNet templates × class names from open_clip's zero_shot_metadata, plus texts that exercise the cleaning, the
    // splitting and the truncation. Python prints [text, ids] pairs; C# tokenizes the same texts.
    private const string Script = """
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES, IMAGENET_CLASSNAMES
        import unicodedata
        names = list(IMAGENET_CLASSNAMES[::40])
        texts = [t(c) for t in OPENAI_IMAGENET_TEMPLATES for c in names[:4]]
        texts += [t(c) for t in SIMPLE_IMAGENET_TEMPLATES for c in names]
        texts += [
            "Hello, World!!! 123 4567 3.14159 -42 1e10 $9.99 100%",
            "it's the dog's toy; they're here, we've gone, I'm sure, you'll see, he'd go",
            "IT'S LOUD -- WHAT'S THAT?!?",
            "  lots   of \t whitespace \n and\r\nnewlines  ",
            "tom &amp; jerry &lt;3 &quot;quoted&quot; &#39;single&#39; &amp;amp; &#x41;",
            "under_score hyphen-ated slash/path back\\\\slash email@example.com http://x.y/z?q=1",
            "emoji 😀 and symbols ©®™ § ¶ • … ∞ ≠ ≤",
            "<start_of_text> inside <end_of_text> text",
            "", "a", "!", "   ",
            "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
            " ".join(["word"] * 100),
            "a photo of a " + " and ".join(names) ,
            "x" * 300,
            " ".join(str(i) for i in range(90)),
        ]
        accented = ["café crème brûlée", "naïve façade", "Zürich Straße", "São Paulo", "Ångström", "piñata jalapeño",
                    "Dvořák Škoda", "Łódź Kraków", "Ελληνικά λέξη", "Москва кошка", "日本語のテキスト", "한국어 고양이", "مرحبا"]
        texts += [unicodedata.normalize('NFC', a) for a in accented]
        texts += [unicodedata.normalize('NFD', a) for a in accented[:4]]
        texts += ["a photo of a " + unicodedata.normalize('NFC', a) + "." for a in accented]
        tok = open_clip.get_tokenizer('ViT-B-32')
        ids = tok(texts)
        print(json.dumps([[t, row] for t, row in zip(texts, ids.tolist())]))
        """;

    [TestMethod]
    public void Tokenize_EqualsOpenClip_IdForId()
    {
        var pairs = JsonSerializer.Deserialize<JsonElement[][]>(OpenClipReference.Run(Script))!;
        Assert.IsTrue(pairs.Length >= 200, $"only {pairs.Length} reference prompts");
        var texts = pairs.Select(p => p[0].GetString()!).ToArray();
        var tokens = ClipTokenizer.Default.Tokenize(texts);
        int longOnes = 0;
        for (int i = 0; i < texts.Length; i++)
        {
            var expected = pairs[i][1].EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var actual = tokens.Row(i).ToArray();
            CollectionAssert.AreEqual(expected, actual, $"text {i} '{texts[i]}': expected [{string.Join(' ', expected)}], got [{string.Join(' ', actual)}]");
            if (ClipTokenizer.Default.Encode(texts[i]).Count + 2 > 77)
            {
                longOnes++;
                Assert.AreEqual(ClipTokenizer.Default.EndOfText, expected[^1], $"text {i} was truncated keeping the end token");
                Assert.IsTrue(tokens.Truncated.Contains(i), $"text {i} is reported truncated");
            }
        }
        Assert.IsTrue(longOnes >= 3, "the prompts include texts truncated at 77");
        Assert.AreEqual(longOnes, tokens.Truncated.Count, "only the long texts are reported truncated");
    }

    [TestMethod]
    public void Vocabulary_HasClipsSizeAndSpecialTokens()
    {
        var tokenizer = ClipTokenizer.Default;
        Assert.AreEqual(49408, tokenizer.VocabularySize);
        Assert.AreEqual(49406, tokenizer.StartOfText);
        Assert.AreEqual(49407, tokenizer.EndOfText);
        var tokens = tokenizer.Tokenize(["A  Photo of a CAT."]);
        var row = tokens.Row(0).ToArray().TakeWhile(id => id != 0).ToArray();
        Assert.AreEqual("<start_of_text>a photo of a cat . <end_of_text>", tokenizer.Decode(row));
    }

    [TestMethod]
    public void Tokenize_TruncatesLongTextKeepingTheEndToken()
    {
        var tokens = ClipTokenizer.Default.Tokenize(["short", string.Join(' ', Enumerable.Repeat("word", 200))]);
        CollectionAssert.AreEqual(new[] { 1 }, tokens.Truncated.ToArray());
        Assert.AreEqual(ClipTokenizer.Default.EndOfText, tokens.Row(1)[76]);
        Assert.AreEqual(0L, tokens.Row(0)[76]);
    }
}
