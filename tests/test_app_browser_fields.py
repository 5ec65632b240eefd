"""The form in a real browser (issue 27, "The Space's first minute"): values out of the table's range are refused
at their field, not clamped; a field's message leaves the field visible and usable and shows as text; Cancel is a
normal outcome (a status line, no red "Error"); every example's snippet is valid Python. Debian's Chromium through
Playwright, with the fixtures and helpers of ``test_app_browser``."""

from __future__ import annotations

import time

import pytest
from app_songs import slow_batches
from test_app_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    _open,
    _running,
    _serve,
    _set_number,
    _upload_song,
    _wait,
    _wait_idle,
    app_url,
    browser,
)
from test_web_page import form_song  # noqa: F401 (a fixture: a song with a known form)
from test_web_styles import probed  # noqa: F401 (a fixture: a catalogue with a style whose file is gone)

from lsd_jax.audio.demo_song import write_demo_song
from lsd_jax.web import examples as ex
from lsd_jax.web.config import AppConfig
from lsd_jax.web.page import CANCELLED

pytestmark = pytest.mark.browser

#: An "Error" the page shows: a toast's title, or the badge of an output's status tracker.
ERRORS_JS = """() => {
  const toasts = [...document.querySelectorAll('[data-testid="toast-body"]')].map(t => t.innerText);
  const boxes = ['#video', '#preview-gallery', '#snippet', '#downloads']
    .map(s => document.querySelector(s)?.innerText ?? '');
  return {toasts, boxes: boxes.filter(t => /\\bError\\b/.test(t))};
}"""


@pytest.fixture(scope="module")
def form(browser, app_url):  # noqa: F811
    page = _open(browser, app_url)
    yield page
    page.close()


def _field_text(page, name: str) -> str:
    return page.locator(f"#param-{name}").inner_text()


def _refused(page, jobs, name: str, value: str, expected: str) -> None:
    """Type ``value`` into ``name``'s box, click Render: the field says ``expected``, nothing ran, the box keeps it."""
    runs = len(jobs._runs)
    _set_number(page, name, value)
    page.wait_for_timeout(300)  # the slider's change reaches the server
    box = page.locator(f"#param-{name} input[type=number]").first
    assert box.input_value() == value, f"{name}: the box changed {value} to {box.input_value()}"
    page.locator("#render-btn").click()
    page.wait_for_function(
        "([n, t]) => document.querySelector('#param-' + n).innerText.includes(t)", arg=[name, expected]
    )
    _wait_idle(page)
    assert len(jobs._runs) == runs, "a refused value ran a job"
    assert box.input_value() == value  # still what the visitor typed: they see what was refused
    assert page.evaluate(ERRORS_JS)["toasts"] == []


def test_values_out_of_range_are_refused_at_their_field_not_clamped(form, app_url, tmp_path):  # noqa: F811
    page, jobs = form, app_url.jobs
    _upload_song(page, write_demo_song(tmp_path / "two.wav", seconds=2.0))
    _set_number(page, "resolution", "32")
    _refused(page, jobs, "fps", "0", "fps must be between 1 and 240, got 0")
    page.locator("#param-fps").screenshot(path=str(ARTIFACTS / "app-fps-refused.png"))
    _refused(page, jobs, "fps", "500", "fps=500 is above this server's limit of 60")
    _set_number(page, "fps", "8")
    _refused(page, jobs, "pulse_react", "99", "pulse_react must be between 0 and 10, got 99")
    assert "fps must be" not in _field_text(page, "fps")  # its own event cleared the fixed field's problem
    _set_number(page, "pulse_react", "1")
    # and in range the same boxes render
    page.locator("#preview-btn").click()
    page.locator("#preview-gallery img").first.wait_for()
    _wait_idle(page)


def test_a_field_s_message_is_text_and_leaves_the_field_usable(form, app_url, tmp_path):  # noqa: F811
    page, jobs = form, app_url.jobs
    _upload_song(page, write_demo_song(tmp_path / "two.wav", seconds=2.0), jobs)
    _set_number(page, "fps", "8")
    _refused(page, jobs, "duration", "-1", "duration must be > 0, got -1")
    assert "&gt;" not in _field_text(page, "duration")
    _set_number(page, "duration", "2")
    _refused(page, jobs, "resolution", "33", "resolution must be even")
    message = page.locator("#param-resolution .validation-error").first.bounding_box()
    number = page.locator("#param-resolution input[type=number]").first.bounding_box()
    slider = page.locator("#param-resolution input[type=range]").first.bounding_box()
    label = page.locator("#param-resolution label").first.bounding_box()
    page.locator("#param-resolution").screenshot(path=str(ARTIFACTS / "app-field-message.png"))

    def apart(a, b):
        return a["y"] + a["height"] <= b["y"] + 1 or b["y"] + b["height"] <= a["y"] + 1

    assert all(apart(message, box) for box in (number, slider, label)), (message, number, slider, label)
    _set_number(page, "resolution", "32")  # the box is usable with the message shown: the fix renders
    page.locator("#render-btn").click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Rendered')")
    _wait_idle(page)


def _cancel_check(page, how: str) -> None:
    _wait_idle(page)
    page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=CANCELLED)
    page.wait_for_timeout(1000)  # a toast or a badge would show by now
    seen = page.evaluate(ERRORS_JS)
    assert seen == {"toasts": [], "boxes": []}, (how, seen)


@pytest.mark.timing
def test_cancel_is_an_outcome_not_an_error(browser, app_url, tmp_path):  # noqa: F811
    """The Cancel button (clicked as soon as the job runs, where Gradio's own cancel left an "Error" badge on the
    video now and then: several times), and a job cancelled on the server (a raised "Cancelled" was a red toast
    and badge), both end with the status line alone."""
    jobs = app_url.jobs
    page = _open(browser, app_url)
    _set_number(page, "fps", "24")
    _set_number(page, "resolution", "32")
    _upload_song(page, write_demo_song(tmp_path / "twelve.wav", seconds=12.0))
    tries = [("#render-btn", "button")] * 5 + [("#render-btn", "server"), ("#preview-btn", "button")]
    for button, cancel in [*tries, ("#preview-btn", "server")]:
        before = set(jobs._runs)
        # after its first batch the job waits for the cancel: it cannot end first on a loaded machine
        with slow_batches(0.2, until=lambda old=before: any(r.cancelled for r in jobs._runs if r not in old)):
            page.locator(button).click()
            _wait(lambda old=before: any(r.frames[0] > 0 or r.working for r in _running(jobs) if r not in old))
            (run,) = [r for r in _running(jobs) if r not in before]
            if cancel == "button":
                page.locator("#cancel-btn").click()
            else:
                run.cancel()
            _wait(run.finished, timeout=60)
        _cancel_check(page, f"{button} cancelled by the {cancel}")
        page.screenshot(path=str(ARTIFACTS / f"app-cancel-{button[1:-4]}-{cancel}.png"))
    page.close()


def _snippet(page) -> str:
    """The code box's text as the visitor copies it (CodeMirror's lines)."""
    return page.evaluate(
        "() => [...document.querySelectorAll('#snippet .cm-line')].map(l => l.textContent).join('\\n')"
    )


def test_every_example_s_snippet_is_valid_python(browser):  # noqa: F811
    t0 = time.monotonic()
    url, demo, jobs = _serve(AppConfig(max_seconds=2, max_resolution=64, examples="eager", warm_up=False))
    try:
        page = _open(browser, url)
        seen = []
        for label in ex.labels():
            page.locator("#examples").get_by_text(label).click()
            page.wait_for_function(
                "last => { const t = [...document.querySelectorAll('#snippet .cm-line')].map(l => l.textContent)"
                ".join('\\n'); return t.includes('write_demo_song') && t !== last; }",
                arg=seen[-1] if seen else "",
            )
            text = _snippet(page)
            assert text.startswith("import lsd_jax"), text[:80]
            compile(text, f"example {label!r}", "exec")
            seen.append(text)
        assert len(set(seen)) == len(ex.labels())
        page.close()
    finally:
        demo.close()
        jobs.close()
    print(f"three examples cached and their snippets compiled in {time.monotonic() - t0:.1f} s")


def test_a_style_that_fails_in_the_job_is_a_status_line_not_an_error_badge(browser, probed):  # noqa: F811
    """A catalogue style whose host answers (so the menu offers it) but whose file is gone (404): the preview ends
    with "Style problem" in the status line, no toast, no "Error" on the stills."""
    url, demo, jobs = _serve(AppConfig(max_seconds=12, max_file_size="2mb", examples="off", warm_up=False))
    try:
        page = _open(browser, url)
        _set_number(page, "fps", "8")
        _set_number(page, "resolution", "32")
        _upload_song(page, write_demo_song(probed / "two.wav", seconds=2.0))
        menu = page.locator("#style input").first
        menu.click()
        page.get_by_role("option", name="near", exact=False).first.click()
        page.wait_for_timeout(300)
        assert menu.input_value().startswith("near"), menu.input_value()
        page.locator("#preview-btn").click()
        _wait_idle(page)
        page.wait_for_function("() => document.querySelector('#status').innerText.includes('Cannot download style')")
        page.wait_for_timeout(1000)  # a toast or a badge would show by now
        assert page.evaluate(ERRORS_JS) == {"toasts": [], "boxes": []}
        status = page.locator("#status").inner_text()
        assert "Style problem" in status and "upload it under" in status, status
        page.screenshot(path=str(ARTIFACTS / "app-style-problem.png"))
        page.close()
    finally:
        demo.close()
        jobs.close()


def test_an_unavailable_style_is_marked_before_any_click(browser, probed):  # noqa: F811
    """Issue 27: a style this server cannot fetch ("far": its host refused the probe) is not offered in the menu,
    and the page says so with the reason on first load; listed on request, it carries its reason."""
    url, demo, jobs = _serve(AppConfig(max_seconds=12, max_file_size="2mb", examples="off", warm_up=False))
    try:
        page = _open(browser, url)
        box = page.locator("#show-all-styles")
        page.wait_for_function(
            "() => document.querySelector('#show-all-styles').innerText.includes('cannot use now')"
        )  # before any click: how many and why
        assert "also list the 1 style this server cannot use now (127.0.0.1 refused the connection)" in (
            box.inner_text()
        )
        menu = page.locator("#style input").first
        menu.click()
        offered = [o.inner_text() for o in page.get_by_role("option").all()]
        assert any(o.startswith("near") for o in offered) and not any(o.startswith("far") for o in offered), offered
        page.keyboard.press("Escape")
        box.locator("input[type=checkbox]").check()
        page.wait_for_timeout(500)  # the menu's new choices arrive
        menu.click()
        offered = [o.inner_text() for o in page.get_by_role("option").all()]
        assert "far (256 px) — unavailable: 127.0.0.1 refused the connection" in offered, offered
        page.screenshot(path=str(ARTIFACTS / "app-unavailable-style.png"))
        page.close()
    finally:
        demo.close()
        jobs.close()


# --- the song's form (lsd_jax/web/sections.py) in the page


@pytest.mark.slow
def test_in_a_browser_the_upload_shows_the_form_and_a_cell_reaches_the_render(browser, form_song):  # noqa: F811
    """The page after an upload: the picture and the table under the buttons; a value typed into the B row's
    pulse_react cell becomes the render's timeline (the other sections at the slider's value)."""
    url, demo, jobs = _serve(AppConfig(max_seconds=40, max_file_size="5mb", examples="off", warm_up=False))
    try:
        tab = _open(browser, url)
        assert not tab.locator("#song-form img").is_visible()  # nothing before a song
        _set_number(tab, "fps", "4")
        _set_number(tab, "resolution", "32")
        _upload_song(tab, form_song, jobs)
        tab.locator("#song-form img").wait_for(state="visible")
        box = tab.locator("#song-form img").bounding_box()
        assert box["width"] > 300 and 60 < box["height"] < 250, box
        buttons, picture = tab.locator("#buttons").bounding_box(), tab.locator("#song-form").bounding_box()
        assert buttons["y"] < picture["y"]  # under the buttons: they stay where they were
        row = tab.locator("#section-values [data-testid=cell-1-0]")
        assert row.inner_text().strip() == "B"
        tab.locator("#section-values [data-testid=cell-1-1]").dblclick()
        tab.keyboard.type("2.5")
        tab.keyboard.press("Enter")
        tab.locator("#render-btn").click()
        _wait(lambda: any(r.finished() for r in jobs._runs), 300)
        (run,) = jobs._runs
        assert run.job.params.pulse_react.as_dict() == {"A": 0.5, "B": 2.5, "C": 0.5, "D": 0.5}
        tab.close()
    finally:
        demo.close()
        jobs.close()
