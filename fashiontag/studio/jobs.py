""""Train & deploy" as a background job the page polls: few-shot training, export, hot reload.

One job at a time (training uses both cores; a second would only slow the first). The job runs
:func:`fashiontag.fewshot.add.add_attribute` on the labels the studio recorded, against the
running server with explicit model control; the operator's admin key stays in this process.
Refusals (too few labels, a head no better than chance, a server without model control) end the
job with their own message, which the page shows as it is.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field

from fashiontag.errors import FashiontagError

__all__ = ["Job", "JobRunner"]

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: int
    attribute: str
    state: str = "running"  # running | done | refused | failed
    stages: list[dict] = field(default_factory=list)  # {"stage", "seconds"} as they end
    message: str = ""
    report: dict | None = None
    version: int | None = None
    started: float = field(default_factory=time.time)
    seconds: float | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "attribute": self.attribute, "state": self.state,
                "stages": self.stages, "message": self.message, "version": self.version,
                "seconds": self.seconds, "report": self.report}


class JobRunner:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs: dict[int, Job] = {}

    def busy(self) -> Job | None:
        with self._lock:
            return next((j for j in self.jobs.values() if j.state == "running"), None)

    def start(self, attribute: str, run, on_done=None) -> Job:
        """Run ``run(progress)`` (returns an ``AddResult``) in a thread; refuses a second job."""
        with self._lock:
            if any(j.state == "running" for j in self.jobs.values()):
                raise FashiontagError("a training job is already running; wait for it")
            job = Job(len(self.jobs) + 1, attribute)
            self.jobs[job.id] = job
        thread = threading.Thread(target=self._run, args=(job, run, on_done),
                                  name=f"fashiontag-studio-job-{job.id}", daemon=True)
        thread.start()
        return job

    def _run(self, job: Job, run, on_done) -> None:
        def progress(stage: str, seconds: float) -> None:
            job.stages.append({"stage": stage, "seconds": seconds})

        try:
            result = run(progress)
            job.report, job.version, job.state = result.report, result.version, "done"
            job.message = f"version {result.version} is answering"
            if on_done is not None:
                on_done(job)
        except FashiontagError as exc:  # refusals and operator errors: the page shows them
            job.state, job.message = "refused", str(exc)
        except Exception as exc:  # a bug: say so on the page, keep the trace in the log
            log.error("training job %d failed:\n%s", job.id, traceback.format_exc())
            job.state, job.message = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.seconds = round(time.time() - job.started, 1)

    def get(self, job_id: int) -> Job | None:
        return self.jobs.get(job_id)
