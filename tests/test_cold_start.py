"""Loading the code location stays light: every run's step process and the code server import
the definitions, so the heavy libraries load only inside the asset and check bodies that use them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

# Top-level packages that cost a second or more to import together; the Dagster layer must not
# import them (or a domain module that does) at module level.
HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "sklearn",
    "statsmodels",
    "prophet",
    "matplotlib",
    "altair",
    "great_expectations",
)

_PROBE = """
import json, sys
{imports}
from enms_dagster.definitions import defs
definitions = defs()
for job in definitions.jobs:
    definitions.resolve_job_def(job.name)
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set(sys.argv[1:]))))
"""


def _heavy_modules_loaded(imports: str = "") -> list[str]:
    """The heavy packages in ``sys.modules`` of a fresh interpreter that loaded the code location
    as a step process does (definitions, then every job)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _PROBE.format(imports=imports), *HEAVY],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        },
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_loading_the_code_location_imports_no_heavy_library():
    assert _heavy_modules_loaded() == []


def test_the_probe_sees_a_heavy_library_a_domain_module_imports():
    # what a top-level `from enms_dagster.anomalies.detectors import ...` in an asset module does
    assert {"pandas", "numpy"} <= set(
        _heavy_modules_loaded("import enms_dagster.anomalies.detectors")
    )
