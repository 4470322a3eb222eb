"""Crash safety: kill -9 the service process mid-job, start it again: nothing is lost."""

from __future__ import annotations

from pathlib import Path

from servicekit import (
    files_under,
    get_job,
    job_request,
    make_photo,
    start_service_process,
    submit,
    wait_for,
)


async def test_jobs_survive_kill_9_of_the_service(tmp_path: Path) -> None:
    env = {"LIVINGPHOTO_SLEEP_SECONDS": "1.5"}
    first = start_service_process(tmp_path, backend="sleep", env=env)
    try:
        async with first.session() as http:
            status, finished, _ = await submit(http, first, job_request(user_id="a"), make_photo())
            assert status == 202
            finished = await wait_for(http, first, finished["job_id"])
            assert finished["state"] == "done"
            status, running, _ = await submit(http, first, job_request(user_id="b"), make_photo())
            assert status == 202
            status, waiting, _ = await submit(http, first, job_request(user_id="c"), make_photo())
            assert status == 202 and waiting["position"] == 1
            await wait_for(http, first, running["job_id"], frozenset({"running"}))
    finally:
        first.kill()
    assert first.proc.returncode == -9

    second = start_service_process(tmp_path, backend="sleep", token=first.token, env=env)
    try:
        async with second.session() as http:
            # A clip finished before the crash is still served.
            async with http.get(second.url + finished["variations"][0]["url"]) as response:
                assert response.status == 200
                assert (await response.read())[4:8] == b"ftyp"
            # The running job runs again, the waiting one runs.
            for job in (running, waiting):
                done = await wait_for(http, second, job["job_id"], within_s=30)
                assert done["state"] == "done", done["error"]
                async with http.get(second.url + done["variations"][0]["url"]) as response:
                    assert response.status == 200
                    assert (await response.read())[4:8] == b"ftyp"
            assert (await get_job(http, second, finished["job_id"]))["state"] == "done"
        # The interrupted attempt left no second set of clips behind.
        runs = {p.parent for p in files_under(second.data_dir / "media" / running["job_id"])}
        assert len([r for r in runs if r.name.startswith("run-")]) == 1
    finally:
        second.stop()
    assert "Traceback" not in second.log()
