"""Where the embedded event store lives on disk."""

def test_a_new_data_folder_is_private_to_the_service_account(tmp_path):
    from rfr.application.app import RfrApplication
    from rfr.infrastructure.persistence import application_env
    from rfr.infrastructure.settings import Settings

    data_dir = tmp_path / "fresh" / "var"
    RfrApplication(env=application_env(Settings(data_dir=data_dir)))
    assert (data_dir.stat().st_mode & 0o777) == 0o700
