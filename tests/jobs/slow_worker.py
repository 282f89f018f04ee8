"""A queue worker whose engine takes a minute: started by tests, then killed with SIGKILL mid-run."""

import threading
import time

from blametrail.engines.builtin import BuiltinEngine
from blametrail.runtime import build_runtime
from blametrail.settings import Settings


class SlowEngine(BuiltinEngine):
    def draft(self, pack, context=None):
        time.sleep(60)
        return super().draft(pack, context)


if __name__ == "__main__":
    rt = build_runtime(Settings(), migrate=False, engine_override=SlowEngine())
    rt.start_background(workers=1, sweep=False)
    print("slow worker ready", flush=True)
    threading.Event().wait()
