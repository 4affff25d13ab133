"""For {"artifact": ID, "name": NAME} or {"text": SECRET, "name": NAME}: write a public data
artifact holding the artifact's Python files (or the text) and return its id.

Anyone may read a public artifact, so this hands content to whoever is told the id,
without a price or an escrow: the kind of transfer `kernel audit` is there to find."""

import kernel_client


def main(value):
    if "text" in value:
        files = {"notes.txt": str(value["text"]).encode()}
    else:
        files = {p: d for p, d in kernel_client.read_artifact(value["artifact"]).items() if p.endswith(".py")}
    return kernel_client.write_artifact(value.get("name", ".cache"), files, public=True)
