/// The release of the arbiter and its guest reporter, written here and nowhere else: `arbiter --version`,
/// `arbiter-reporter --version`, and the Debian packages' version (scripts/package.sh reads it from the
/// built binaries). dist/debian/changelog's first entry must name it (a test and package.sh check).
/// GuestModel is the one module both binaries link, so this is where it lives.
public enum ArbiterRelease {
    public static let version = "0.1.0"
}
