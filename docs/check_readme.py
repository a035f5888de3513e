"""Checks README.md: its relative links lead to files that exist, and its C# quickstart is the code of examples/Quickstart
(regions 'quickstart' and 'prediction').

The README writes literal values where the example reads its arguments: "resnet50" for `architecture`, "IMAGENET1K_V2" for
`weights`, 3 for `epochs`. Comments, blank lines, indentation, `using` lines and access modifiers of the class are ignored.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
readme = open(f"{root}/README.md", encoding="utf-8").read()
program = open(f"{root}/examples/Quickstart/Program.cs", encoding="utf-8").read()

missing = [link for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
           if "://" not in link and not os.path.exists(os.path.join(root, link))]
if missing:
    sys.exit("README.md links to missing files: " + ", ".join(missing))

blocks = re.findall(r"```csharp\n(.*?)```", readme, re.S)
if not blocks:
    sys.exit("README.md: no ```csharp block (the quickstart)")


def region(name):
    m = re.search(rf"#region {name}\n(.*?)#endregion", program, re.S)
    if not m:
        sys.exit(f"examples/Quickstart/Program.cs: no #region {name}")
    return m.group(1)


def normalize(code):
    lines = []
    for line in code.splitlines():
        line = re.sub(r"//.*$", "", line).strip()
        if not line or line.startswith("using ") or line.startswith("#"):
            continue
        lines.append(re.sub(r"\s+", " ", line))
    return lines


readme_lines = [l.replace('"resnet50"', "architecture").replace('"IMAGENET1K_V2"', "weights").replace("Epochs = 3,", "Epochs = epochs,")
                for l in normalize(blocks[0])]
example_lines = normalize(region("quickstart") + region("prediction"))
if readme_lines != example_lines:
    import difflib
    print("README.md's quickstart differs from examples/Quickstart/Program.cs (regions quickstart + prediction):")
    print("\n".join(difflib.unified_diff(example_lines, readme_lines, "examples/Quickstart", "README.md", lineterm="")))
    sys.exit(1)
print(f"README: links resolve; quickstart = examples/Quickstart ({len(readme_lines)} lines)")
