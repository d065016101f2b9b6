"""Write config.example.toml and the README's settings table from minibinder/config.py (the
one list of settings); `tests/unit/test_config.py` checks that both are up to date."""

from pathlib import Path

from minibinder.settings_docs import example_toml, markdown_table

ROOT = Path(__file__).resolve().parents[1]
(ROOT / "config.example.toml").write_text(example_toml())
readme = (ROOT / "README.md").read_text()
start = readme.index("| Setting | Default | Meaning |")
end = readme.find("\n\n", start)
end = len(readme) if end < 0 else end
(ROOT / "README.md").write_text(readme[:start] + markdown_table().rstrip("\n") + readme[end:])
