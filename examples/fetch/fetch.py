"""For {"artifact": ID, "path": PATH}: read that file through the kernel and return its text.

With {"pay": {"to": NAME, "amount": N}} it also pays for what it read, by plain transfer."""

import kernel_client


def main(value):
    text = kernel_client.read_artifact(value["artifact"], value["path"]).decode("utf-8", "replace")
    if value.get("pay"):
        kernel_client.transfer(value["pay"]["to"], value["pay"]["amount"], "for the data")
    return text
