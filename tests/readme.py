"""The README and its runnable blocks, as the README tests read them (tests/packaging/test_readme.py runs the
```python blocks, tests/packaging/test_readme_start.py the two opening commands, tests/cli/test_cli_readme.py the
command-line section)."""

from __future__ import annotations

import re

from tests.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
#: the README's first ```bash block: what a newcomer types first
TWO_COMMANDS = "pip install . && loopforge demo\nbash .ci/run\n"
#: the ```bash blocks of the section "The command line"
CLI_SECTION = README.split("## The command line\n", 1)[1].split("\n## ", 1)[0]
CLI_BLOCKS = re.findall(r"```bash\n(.*?)```", CLI_SECTION, re.S)
