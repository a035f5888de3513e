// Compiles the documentation's snippets (see GuideSnippets.csproj); running it is not needed for the docs.
Console.WriteLine("The guides' snippets compile; see docs/ for the pages that include them.");
