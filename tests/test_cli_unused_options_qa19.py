"""An option that none of the run's steps reads is refused before any work (session 16): passed over in
silence, `benchmark_db_migration.py --validate --action archive` made an empty ./archived_json and moved
nothing, `benchmark_db_maintenance.py --optimize-db --older-than 5` read as if old rows were dealt with, and
`--artifacts-dir` without `--migrate-ci` merged no artifact."""
from __future__ import annotations

import pytest

import benchmark_db_maintenance
import benchmark_db_migration
import benchmark_db_updater


@pytest.mark.parametrize("main, argv, option", [
    (benchmark_db_migration.main, ["--validate", "--action", "archive"], "--action"),
    (benchmark_db_migration.main, ["--validate", "--artifacts-dir", "artifacts"], "--artifacts-dir"),
    (benchmark_db_migration.main, ["--validate", "--categories", "performance"], "--categories"),
    (benchmark_db_migration.main, ["--reconvert", "--force"], "--force"),
    (benchmark_db_maintenance.main, ["--optimize-db", "--older-than", "5"], "--older-than"),
    # the default value typed out is still an option the run does not read
    (benchmark_db_maintenance.main, ["--optimize-db", "--action", "archive"], "--action"),
    (benchmark_db_maintenance.main, ["--check-integrity", "--force"], "--force"),
    (benchmark_db_maintenance.main, ["--backup", "--backup-retention", "3"], "--backup-retention"),
    (benchmark_db_maintenance.main, ["--restore", "x.duckdb", "--older-than", "3"], "--older-than"),
    (benchmark_db_updater.main, ["--scan-dir", ".", "--auto-store-dir", "elsewhere"], "--auto-store-dir"),
])
def test_an_option_no_step_reads_is_a_usage_error_and_nothing_is_made(tmp_path, monkeypatch, capsys,
                                                                      main, argv, option):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--db", str(tmp_path / "db.duckdb")]) == 2
    err = capsys.readouterr().err
    assert f"error DB000: {option} is read only by" in err and "not by this run" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no database, no empty archive folder


def test_the_message_names_every_step_that_reads_the_option(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert benchmark_db_migration.main(["--validate", "--action", "remove", "--db", "db.duckdb"]) == 2
    assert ("--action is read only by --migrate-all, --input-dirs, --input-files or --migrate-ci"
            in capsys.readouterr().err)


@pytest.mark.slow  # 0.3-1.4 s each
@pytest.mark.parametrize("argv", [
    ["--clean-json", "--older-than", "30", "--action", "archive"],
    ["--purge-backups", "--backup-retention", "30", "--backup-dir", "db_backups"],
    ["--optimize-db", "--vacuum", "--backup", "--purge-backups", "--backup-retention", "30", "--clean-json",
     "--older-than", "30", "--action", "archive"],  # the guide's cron line
])
def test_options_their_steps_read_are_taken(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert benchmark_db_maintenance.main([*argv, "--db", "db.duckdb", "--quiet"]) == 0


def test_the_corpus_report_which_opens_no_database_offers_no_lock_timeout(capsys):
    from scripts import convert_corpus_report

    assert "--lock-timeout" not in convert_corpus_report.build_parser().format_help()
    with pytest.raises(SystemExit) as stopped:  # argparse's own errors leave through SystemExit
        convert_corpus_report.main([".", "--lock-timeout", "5"])
    assert stopped.value.code == 2
    assert "unrecognized arguments: --lock-timeout" in capsys.readouterr().err
