"""The Airflow DAG files (this folder is the DAGs folder; ``newsmon_tasks`` holds what they share).

A package only so that it installs inside ``newsmon``; Airflow reads the files, not the package."""
